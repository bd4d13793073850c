"""Held-out evaluation of the morphology network (paper 003, Sec. 5).

:func:`evaluate` is called by :func:`catclean.morphology.stage.evaluate_model` (rule
``evaluate_morphology`` and ``catclean morphology evaluate``).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from . import CLASS_NAMES
from .infer import host_detection, predict, segment_hosts
from .metrics import (
    add_chroma_noise,
    baseline_predict,
    centroid_offsets,
    classification_table,
    ground_truth,
    mask_ious,
    mean_average_precision,
    robust_stats,
)

log = logging.getLogger(__name__)


def host_classes(preds: list, shape: tuple, min_score: float):
    """Class (0 = none), score and mask of the host detection of every field."""
    classes, scores, masks = [], [], []
    for p in preds:
        j, _ = host_detection(p, shape, min_score)
        if j is None:
            classes.append(0)
            scores.append(np.nan)
            masks.append(np.zeros(shape, bool))
        else:
            classes.append(int(p["classes"][j]))
            scores.append(float(p["scores"][j]))
            masks.append(p["masks"][j])
    return np.array(classes), np.array(scores), np.array(masks)


def evaluate(model, fields: dict, idx, baseline_threshold: float, *, mask_source: str,
             noise_scales, seed: int, batch_size: int, min_score: float,
             pixscale: float, n_galaxy_free: int = 0) -> dict:
    """Sec. 5 metrics of a model and of the baseline on fields ``idx``.

    Returns
    -------
    dict
        ``map_box`` / ``map_mask`` (IoU 0.5) for the network and the baseline, per-class
        AP, Table 3 statistics of the host class, host-mask IoU against the Otsu and the
        truth masks (median, mean), centroid offset median / MAD in x and y (pixels and
        arcsec), accuracy under chroma noise, inference time per field and, with
        ``n_galaxy_free`` > 0, ``galaxy_free``: the ``morphology_reason`` counts of
        :func:`~catclean.morphology.infer.segment_hosts` on that many sky-only and
        stars-only fields (:func:`~catclean.morphology.simulate.galaxy_free_fields`;
        null = a host was wrongly found).
    """
    idx = np.asarray(idx)
    images = fields["images"][idx]
    gts = ground_truth({k: fields[k][idx] for k in ("classes", "otsu_masks", "truth_masks")},
                       mask_source)
    shape = images.shape[1:3]
    t0 = time.perf_counter()
    preds = predict(model, images, batch_size=batch_size)
    t_inf = (time.perf_counter() - t0) / len(idx)
    base = baseline_predict(images, baseline_threshold)
    out: dict = {"n_test_fields": int(len(idx)), "seconds_per_field": t_inf}
    for name, p in (("net", preds), ("baseline", base)):
        for typ in ("box", "mask"):
            r = mean_average_precision(p, gts, 0.5, typ)
            out[f"{name}_map_{typ}"] = r["map"]
            out[f"{name}_ap_{typ}"] = {CLASS_NAMES[c]: v["ap"] for c, v in
                                       r["per_class"].items()}
            if typ == "box":
                out[f"_{name}_pr"] = r
    true_cls = fields["classes"][idx]
    hc, hs, hm = host_classes(preds, shape, min_score)
    bc, _, bm = host_classes(base, shape, 0.0)
    out["net_table3"] = _named(classification_table(true_cls, hc))
    out["baseline_table3"] = _named(classification_table(true_cls, bc))
    for ref in ("otsu", "truth"):
        iou = mask_ious(hm, fields[f"{ref}_masks"][idx])
        biou = mask_ious(bm, fields[f"{ref}_masks"][idx])
        out[f"net_mask_iou_{ref}"] = {"median": float(np.nanmedian(iou)),
                                      "mean": float(np.nanmean(iou))}
        out[f"baseline_mask_iou_{ref}"] = {"median": float(np.nanmedian(biou)),
                                           "mean": float(np.nanmean(biou))}
    otsu_truth = mask_ious(fields["otsu_masks"][idx], fields["truth_masks"][idx])
    out["otsu_vs_truth_iou"] = {"median": float(np.nanmedian(otsu_truth)),
                                "mean": float(np.nanmean(otsu_truth))}
    off = centroid_offsets(images, hm, fields["centres"][idx])
    out["centroid_pix"] = {"x": robust_stats(off[:, 0]), "y": robust_stats(off[:, 1])}
    out["centroid_arcsec"] = {k: {kk: (vv * pixscale if kk != "n" else vv)
                                  for kk, vv in v.items()}
                              for k, v in out["centroid_pix"].items()}
    out["_offsets"] = off
    noise = {"scales": [0.0] + list(noise_scales),
             "net_accuracy": [float(np.mean(hc == true_cls))],
             "baseline_accuracy": [float(np.mean(bc == true_cls))]}
    for k, s in enumerate(noise_scales):
        noisy = add_chroma_noise(images, s, seed + k)
        nc, _, _ = host_classes(predict(model, noisy, batch_size=batch_size,
                                        with_masks=True), shape, min_score)
        bnc, _, _ = host_classes(baseline_predict(noisy, baseline_threshold), shape, 0.0)
        noise["net_accuracy"].append(float(np.mean(nc == true_cls)))
        noise["baseline_accuracy"].append(float(np.mean(bnc == true_cls)))
    out["noise"] = noise
    if n_galaxy_free > 0:
        from .simulate import galaxy_free_fields

        free = {}
        for k, stars in enumerate((False, True)):
            imgs = galaxy_free_fields(n_galaxy_free, seed + 100 + k, stars, shape[0], pixscale)
            t, _ = segment_hosts(model, imgs, pixscale, min_score, batch_size)
            free["stars_only" if stars else "sky_only"] = {
                str(r): int(v) for r, v in t["morphology_reason"].fillna("host_found")
                .value_counts().items()}
        out["galaxy_free"] = free
    out["_preds"] = preds
    return out


def _named(table: dict) -> dict:
    return {(CLASS_NAMES[k] if isinstance(k, int) else k): v for k, v in table.items()}


def public(metrics: dict) -> dict:
    """The JSON-serialisable part of :func:`evaluate` (drops ``_``-prefixed entries)."""
    return {k: v for k, v in metrics.items() if not k.startswith("_")}
