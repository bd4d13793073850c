"""The morphology stage: the functions the workflow rules (``workflow/rules/morphology.smk``),
the ``catclean morphology`` commands and the tests call (paper 003 in the pipeline, issue 12).

Flow::

    make_morphology_fields     simulated SDSS-like gri fields + Otsu / truth masks + split
    train_morphology           staged training (heads, then all) for a fixed step budget
    evaluate_morphology        held-out metrics JSON + Fig. 17 analogue, precision-recall,
                               centroid histogram, accuracy vs chroma noise
    fetch_host_images          live imaging only: every host's Legacy viewer cutout.jpg
                               (:mod:`.host_images`, through the services' one Fetcher)
    segment_hosts              every host: a gri-like image at the morphology pixel scale,
                               host class / score / mask centroid / mask, all detections
    morphology_columns         per partition: in_host_mask, morph_class, morph_score,
                               morphology_reason for every source (CATALOG_COLUMNS)
    morphology_shred_crosscheck  in_host_mask against the shred CNN's is_shred

Host images: the synthetic run cuts every host out of its rendered *Legacy* field (the
cutouts stage's :class:`~catclean.cutouts.synthetic.FieldCutter`, Legacy grz colours) at
``pixscale`` (SDSS 0.396"/pix) and ``field_size`` pixels (256 = 101"), north up. The network
was trained on gri asinh colours; the grz Legacy colours are the closest imaging the sky
simulator renders (documented in docs/morphology.md). Hosts without a rendered field get
``morphology_reason = no_host_image``. A live run fetches the same image from the Legacy
viewer (``cutout.jpg`` at ``pixscale`` and ``field_size``; rule ``fetch_host_images``,
:mod:`.host_images`); a host whose download fails gets ``image_fetch_failed`` (or
``image_off_footprint`` / ``image_blank`` / ``image_corrupt``) and ``image_error`` naming
the URL.

``settings`` below is the chosen preset of the ``morphology`` config section, complete
(:func:`catclean.config.preset_settings`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import CLASS_NAMES

log = logging.getLogger(__name__)

#: per-source catalog columns of the stage and their dtypes
SOURCE_COLUMNS = {
    "in_host_mask": "boolean",     # source inside its host's Mask R-CNN mask; <NA>: no host / not segmented
    "morph_class": "string",       # class of the detection covering the source (spiral | elliptical)
    "morph_score": "float64",      # its score
    "morphology_reason": "string",  # <NA> when processed, else why not
}
_FIELD_KEYS = ("images", "classes", "otsu_masks", "truth_masks", "centres")


# ---------------------------------------------------------------- training data, model
def make_fields(n_fields: int, field_size: int, pixscale: float, truth_level: float,
                split: Sequence[float], seed: int, jobs: int, out_path) -> dict:
    """Simulate ``n_fields`` training fields (Sec. 2) and their train / val / test split.

    Writes an ``.npz`` with ``images`` (n, S, S, 3) uint8, ``classes``, ``otsu_masks``,
    ``truth_masks``, ``centres`` and the index arrays ``train``, ``val``, ``test``.
    """
    from .simulate import simulate_fields, split_fields

    fields = simulate_fields(n_fields, seed=seed, size=field_size, pixscale=pixscale,
                             truth_level=truth_level, n_jobs=jobs)
    parts = split_fields(n_fields, tuple(split), seed=seed, classes=fields["classes"])
    out = {k: fields[k] for k in _FIELD_KEYS} | parts
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **out)
    log.info("simulated %d fields (%s)", n_fields,
             {k: len(v) for k, v in parts.items()})
    return out


def read_fields(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def network_config(settings: dict, seed: int, train_steps: int | None):
    """The :class:`~catclean.morphology.config.MorphConfig` of a preset; ``train_steps``
    (fixed step budget) replaces ``steps_per_epoch`` so that the stages' epochs run
    ``ceil(train_steps / epochs)`` steps each."""
    from .config import from_settings

    cfg = from_settings(settings, seed)
    if train_steps:
        epochs = max(1, sum(e for _, e in cfg.stages))
        cfg.steps_per_epoch = max(1, math.ceil(train_steps / epochs))
    return cfg


def model_stem(model_json) -> Path:
    """``.../morphology_maskrcnn.json`` -> the stem :func:`~.train.load_model` takes."""
    return Path(model_json).with_suffix("")


def train(fields_path, settings: dict, train_steps: int | None, mask_source: str, seed: int,
          model_json, history_path) -> dict:
    """Staged training (Fig. 8, Table 2: heads, then all) for a fixed number of steps.

    Writes the model (``<stem>.json`` config + ``<stem>.weights.h5``) and the training
    history JSON (per-epoch losses, steps, parameter count, wall time)."""
    from .train import save_model, train_model

    fields = read_fields(fields_path)
    cfg = network_config(settings, seed, train_steps)
    model, hist = train_model(cfg, fields, fields["train"], fields["val"], mask_source,
                              log_fn=log.info)
    save_model(model, model_stem(model_json))
    hist["preset"] = settings.get("preset")
    Path(history_path).write_text(json.dumps(hist, indent=1, default=float))
    return hist


def load(model_json):
    from .train import load_model

    return load_model(model_stem(model_json))


def evaluate_model(fields_path, model_json, *, mask_source: str, noise_scales, min_score: float,
                   batch_size: int, pixscale: float, seed: int, metrics_path,
                   detections_path, pr_path, centroid_path, noise_path) -> dict:
    """Sec. 5 on the held-out test fields: metrics JSON (mAP@0.5, Table 3, mask IoU,
    centroids, chroma noise; the trivial baseline alongside; host-free fields) and the
    four report plots."""
    from .evaluate import evaluate, public
    from .metrics import fit_concentration_threshold
    from .plots import (
        plot_accuracy_vs_noise,
        plot_centroid_offsets,
        plot_detections,
        plot_precision_recall,
    )

    fields = read_fields(fields_path)
    model = load(model_json)
    train_idx, test = fields["train"], fields["test"]
    thr = fit_concentration_threshold(fields["images"][train_idx], fields["classes"][train_idx])
    m = evaluate(model, fields, test, thr, mask_source=mask_source, noise_scales=noise_scales,
                 seed=seed, batch_size=batch_size, min_score=min_score, pixscale=pixscale,
                 n_galaxy_free=max(4, len(test) // 2))
    res = {"config": model.cfg.to_dict(), "baseline_threshold": thr,
           "split_sizes": {k: int(len(fields[k])) for k in ("train", "val", "test")},
           **public(m)}
    Path(metrics_path).write_text(json.dumps(res, indent=1, default=float))
    plot_detections(fields["images"][test], m["_preds"], detections_path,
                    fields["classes"][test], min_score=min_score)
    plot_precision_recall(m["_net_pr"], pr_path, m["_baseline_pr"])
    plot_centroid_offsets(m["_offsets"], centroid_path, pixscale)
    plot_accuracy_vs_noise(m["noise"]["scales"], m["noise"]["net_accuracy"], noise_path,
                           m["noise"]["baseline_accuracy"])
    log.info("net mAP@0.5 box %.3f mask %.3f | baseline box %.3f mask %.3f",
             m["net_map_box"], m["net_map_mask"], m["baseline_map_box"],
             m["baseline_map_mask"])
    return res


# ---------------------------------------------------------------- hosts
def host_images(hosts: pd.DataFrame, field_paths: dict, size: int, pixscale: float):
    """A ``size`` x ``size`` RGB image (uint8, north up) of every host at ``pixscale``, cut
    from its rendered Legacy field; ``(images, ok)`` with ``ok`` False where the host has no
    readable field (its image stays zero)."""
    from ..cutouts.synthetic import FieldCutter
    from ..sky.render import read_field_fits

    images = np.zeros((len(hosts), size, size, 3), np.uint8)
    ok = np.zeros(len(hosts), bool)
    for i, (nsaid, ra, dec) in enumerate(zip(hosts["NSAID"], hosts["RA"], hosts["DEC"])):
        path = field_paths.get(int(nsaid))
        if path is None or not Path(path).exists():
            continue
        try:
            images[i], _ = FieldCutter(read_field_fits(path)).rgb(ra, dec, size, pixscale)
            ok[i] = True
        except Exception as exc:  # unreadable field: flag the host, keep going
            log.warning("host %s: no image (%s)", nsaid, exc)
    return images, ok


def detection_labels(pred: dict | None, shape: tuple, min_score: float):
    """Per pixel, the index of the highest-scoring detection (score >= ``min_score``)
    whose mask covers it (-1: none), and the detections' classes and scores."""
    labels = np.full(shape, -1, np.int16)
    if pred is None:
        return labels, np.zeros(0, int), np.zeros(0)
    scores = np.asarray(pred["scores"], float)
    keep = np.flatnonzero(scores >= min_score)
    for j in keep[np.argsort(scores[keep], kind="stable")]:  # lowest first, best on top
        labels[pred["masks"][j]] = j
    return labels, np.asarray(pred["classes"], int), scores


def segment(hosts_path, field_paths: dict, model_json, *, size: int, pixscale: float,
            min_score: float, batch_size: int, table_path, masks_path,
            images_path=None, model=None) -> pd.DataFrame:
    """Segment every host (rule ``segment_hosts``).

    The host images are cut from the rendered Legacy fields ``field_paths`` (``{NSAID:
    path}``, synthetic imaging) or, when ``images_path`` is given, read from the ``.npz`` of
    rule ``fetch_host_images`` (live imaging, :mod:`.host_images`).

    Writes the host table (``NSAID``, ``RA``, ``DEC`` + :data:`~.infer.HOST_COLUMNS`;
    ``morphology_reason`` null when measured, else ``no_host_image``, ``image_*`` (live: no
    usable download, :data:`.host_images.IMAGE_REASONS`), ``nan_pixels``,
    ``blank_image``, ``no_detection``, ``no_host_at_centre``, ``bad_shape``; ``image_error``:
    why a live download failed, naming the URL) and an ``.npz``
    with ``nsaid``, ``ra``, ``dec``, ``images``, ``host_masks`` (N, S, S) bool, ``labels``
    (N, S, S) int16 (:func:`detection_labels`), ``det_classes`` / ``det_scores`` (N, K),
    ``size`` and ``pixscale``.
    """
    hosts = pd.read_parquet(hosts_path, columns=["NSAID", "RA", "DEC"])
    reasons = errors = None
    if images_path is not None:
        from .host_images import align, read_host_images

        images, ok, reasons, errors = align(hosts, read_host_images(images_path), size)
    else:
        images, ok = host_images(hosts, field_paths, size, pixscale)
    model = model if model is not None else load(model_json)
    return segment_images(hosts, images, ok, model, size=size, pixscale=pixscale,
                          min_score=min_score, batch_size=batch_size, table_path=table_path,
                          masks_path=masks_path, reasons=reasons, errors=errors)


def segment_images(hosts: pd.DataFrame, images: np.ndarray, ok: np.ndarray, model, *,
                   size: int, pixscale: float, min_score: float, batch_size: int,
                   table_path, masks_path, reasons=None, errors=None) -> pd.DataFrame:
    """Segment host images and write the outputs of :func:`segment`.

    Parameters
    ----------
    hosts : DataFrame
        ``NSAID``, ``RA``, ``DEC`` (deg) of each host, in the order of ``images``.
    images : ndarray (N, size, size, 3)
        Host images (uint8 or float; any pixels: bad ones give flagged rows).
    ok : ndarray (N,) bool
        False where the host has no image (``no_host_image``).
    model : MaskRCNN
    size, pixscale, min_score, batch_size, table_path, masks_path
        As :func:`segment`.
    reasons : array of str (N,), optional
        ``morphology_reason`` of the hosts without an image (default ``no_host_image``).
    errors : array of str or None (N,), optional
        The ``image_error`` column (null where None; default all null).
    """
    from .infer import segment_hosts

    hosts = hosts[["NSAID", "RA", "DEC"]].reset_index(drop=True)
    ok = np.asarray(ok, bool)
    table, masks, dets = segment_hosts(model, images, pixscale=pixscale, min_score=min_score,
                                       batch_size=batch_size, with_detections=True)
    table.loc[~ok, list(table.columns)] = pd.NA
    table.loc[~ok, "morphology_reason"] = (
        "no_host_image" if reasons is None else np.asarray(reasons, dtype=object)[~ok])
    table["image_error"] = pd.array(
        [None] * len(hosts) if errors is None else list(errors), dtype="string")
    masks[~ok] = False
    table = pd.concat([hosts, table], axis=1)
    k = max([len(d["scores"]) for d, good in zip(dets, ok) if good and d] + [1])
    labels = np.full(masks.shape, -1, np.int16)
    det_classes = np.zeros((len(hosts), k), np.int8)
    det_scores = np.full((len(hosts), k), np.nan)
    for i, (d, good) in enumerate(zip(dets, ok)):
        if not good:
            continue
        labels[i], cls, sc = detection_labels(d, masks.shape[1:], min_score)
        det_classes[i, :len(cls)], det_scores[i, :len(sc)] = cls, sc
    Path(table_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(table_path, index=False)
    stored = np.asarray(images)
    if stored.dtype != np.uint8:  # keep what was segmented, viewable (bad pixels -> 0)
        stored = np.clip(np.nan_to_num(stored.astype(np.float64), nan=0.0, posinf=255.0,
                                       neginf=0.0), 0, 255).astype(np.uint8)
    np.savez_compressed(masks_path, nsaid=hosts["NSAID"].to_numpy(np.int64),
                        ra=hosts["RA"].to_numpy(float), dec=hosts["DEC"].to_numpy(float),
                        images=stored, host_masks=masks, labels=labels,
                        det_classes=det_classes, det_scores=det_scores,
                        size=size, pixscale=pixscale)
    log.info("segmented %d hosts: %s", len(table),
             table["morphology_reason"].fillna("ok").value_counts().to_dict())
    return table


def read_segmentation(masks_path) -> dict:
    with np.load(masks_path) as z:
        return {k: z[k] for k in z.files}


def host_pixels(ra, dec, host_ra: float, host_dec: float, size: int, pixscale: float):
    """(x, y) 0-indexed pixel positions of sky positions in a host image (north up, as
    :meth:`FieldCutter.rgb` writes it: image row = size - 1 - WCS y)."""
    from ..sky.wcs import field_wcs

    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    xy = np.full((len(ra), 2), np.nan)
    good = np.isfinite(ra) & np.isfinite(dec)
    if good.any():
        x, y = field_wcs(host_ra, host_dec, size, pixscale).all_world2pix(ra[good], dec[good], 0)
        xy[good, 0], xy[good, 1] = x, size - 1 - y
    return xy


def source_columns(cuts: pd.DataFrame, hosts: pd.DataFrame, seg: dict) -> pd.DataFrame:
    """:data:`SOURCE_COLUMNS` for every source of ``cuts`` (``source_id``, ``ra``, ``dec``,
    ``host_nsaid``) from the host table and segmentation of :func:`segment`.

    ``morphology_reason``: ``no_host`` (no associated host), ``host_<reason>`` (the host
    could not be segmented), ``bad_position`` (non-finite ra/dec); null when processed.
    A processed source outside the host image is not in the mask (False)."""
    from .positions import in_host_mask

    n = len(cuts)
    inside = pd.array([pd.NA] * n, dtype="boolean")
    cls = pd.array([pd.NA] * n, dtype="string")
    score = np.full(n, np.nan)
    reason = pd.array([pd.NA] * n, dtype="string")
    row_of = {int(v): i for i, v in enumerate(seg["nsaid"])}
    host_reason = dict(zip(hosts["NSAID"].astype(int), hosts["morphology_reason"]))
    host_ids = pd.to_numeric(cuts["host_nsaid"], errors="coerce").to_numpy(float)
    ra, dec = cuts["ra"].to_numpy(float), cuts["dec"].to_numpy(float)
    size, pixscale = int(seg["size"]), float(seg["pixscale"])
    for nsaid in pd.unique(host_ids):
        rows = np.flatnonzero(host_ids == nsaid) if np.isfinite(nsaid) else \
            np.flatnonzero(~np.isfinite(host_ids))
        h = row_of.get(int(nsaid)) if np.isfinite(nsaid) else None
        if h is None:
            reason[rows] = "no_host"
            continue
        why = host_reason.get(int(nsaid))
        if isinstance(why, str):
            reason[rows] = f"host_{why}"
            continue
        xy = host_pixels(ra[rows], dec[rows], seg["ra"][h], seg["dec"][h], size, pixscale)
        bad = ~np.all(np.isfinite(xy), axis=1)
        reason[rows[bad]] = "bad_position"
        good = rows[~bad]
        inside[good] = in_host_mask(xy[~bad], seg["host_masks"][h])
        ix = np.floor(xy[~bad] + 0.5).astype(int)
        on = (ix >= 0).all(axis=1) & (ix < size).all(axis=1)
        lab = np.full(len(good), -1)
        lab[on] = seg["labels"][h][ix[on, 1], ix[on, 0]]
        det = lab >= 0
        cls[good[det]] = [CLASS_NAMES[int(c)] for c in seg["det_classes"][h][lab[det]]]
        score[good[det]] = seg["det_scores"][h][lab[det]]
    return pd.DataFrame({"source_id": cuts["source_id"].astype("string").to_numpy(),
                         "in_host_mask": inside, "morph_class": cls,
                         "morph_score": score.astype("float64"),
                         "morphology_reason": reason})


def catalog_columns(cuts_path, host_table_path, masks_path, out_path=None) -> pd.DataFrame:
    """Rule ``morphology_columns``: one row per ``source_id`` of the partition."""
    cuts = pd.read_parquet(cuts_path, columns=["source_id", "ra", "dec", "host_nsaid"])
    out = source_columns(cuts, pd.read_parquet(host_table_path),
                         read_segmentation(masks_path))
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        out.to_parquet(out_path, index=False)
    log.info("%d sources: %d in a host mask, %d with a detection; reasons %s", len(out),
             int(out.in_host_mask.fillna(False).sum()), int(out.morph_class.notna().sum()),
             out.morphology_reason.fillna("ok").value_counts().to_dict())
    return out


# ---------------------------------------------------------------- shred cross-check
def disagreement_examples(dis: pd.DataFrame, seg: dict, max_examples: int) -> list:
    """Disagreements to show: ``(row, host index, x, y, surveys)`` on their host's image.

    One entry per host-image pixel (the same object in several surveys' catalogs is shown
    once, its surveys listed); shreds outside the mask first, then sources in the mask
    that are not shreds, farthest from the host centre first (the host's own catalog
    entry, at the centre, comes last)."""
    row_of = {int(v): i for i, v in enumerate(seg["nsaid"])}
    size, pixscale = int(seg["size"]), float(seg["pixscale"])
    seen: dict = {}
    for _, s in dis.iterrows():
        h = row_of.get(int(s["host_nsaid"]))
        if h is None:
            continue
        x, y = host_pixels([s["ra"]], [s["dec"]], seg["ra"][h], seg["dec"][h], size, pixscale)[0]
        if not (0 <= x < size and 0 <= y < size):
            continue
        key = (h, int(round(x)), int(round(y)), bool(s["in_host_mask"]))
        survey = str(s["source_id"]).split(":")[0]
        if key in seen:
            seen[key][4].add(survey)
            continue
        seen[key] = [s, h, x, y, {survey}]
    c = (size - 1) / 2

    def order(e):
        return (bool(e[0]["in_host_mask"]), -np.hypot(e[2] - c, e[3] - c))

    return [(s, h, x, y, "+".join(sorted(sv))) for s, h, x, y, sv in
            sorted(seen.values(), key=order)[:max_examples]]


def crosscheck_table(shreds: pd.DataFrame, morph: pd.DataFrame) -> pd.DataFrame:
    """Counts of ``in_host_mask`` (rows: True / False / null) against ``is_shred``
    (columns: True / False / null), joined on ``source_id``."""
    j = morph[["source_id", "in_host_mask"]].merge(shreds[["source_id", "is_shred"]],
                                                   on="source_id", how="left")

    def lab(s):
        return s.astype("boolean").astype("string").fillna("null")

    t = pd.crosstab(lab(j["in_host_mask"]), lab(j["is_shred"]))
    order = ["True", "False", "null"]
    return t.reindex(index=order, columns=order, fill_value=0).rename_axis(
        index="in_host_mask", columns="is_shred")


def shred_crosscheck(shreds_paths: Sequence[str], morph_paths: Sequence[str],
                     cuts_paths: Sequence[str], masks_path, json_path, html_path, png_path,
                     max_examples: int = 8) -> pd.DataFrame:
    """Rule ``morphology_shred_crosscheck``: how the host masks agree with the shred CNN.

    ``shreds_paths[i]``, ``morph_paths[i]`` and ``cuts_paths[i]`` are the same partition.
    Writes the counts (JSON, HTML) and a figure: the count table and host-image cutouts of
    disagreements (in the mask but not a shred, or a shred outside the mask)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shreds = pd.concat([pd.read_parquet(p, columns=["source_id", "is_shred"])
                        for p in shreds_paths], ignore_index=True)
    morph = pd.concat([pd.read_parquet(p) for p in morph_paths], ignore_index=True)
    cuts = pd.concat([pd.read_parquet(p, columns=["source_id", "ra", "dec", "host_nsaid"])
                      for p in cuts_paths], ignore_index=True)
    table = crosscheck_table(shreds, morph)
    Path(json_path).write_text(json.dumps(
        {"counts": {r: {c: int(v) for c, v in row.items()} for r, row in
                    table.to_dict("index").items()},
         "n_sources": int(len(morph))}, indent=1))
    Path(html_path).write_text(
        "<h3>Host masks (Mask R-CNN, paper 003) against the shred CNN (paper 001)</h3>"
        "<p>Sources of every partition; rows in_host_mask, columns is_shred.</p>"
        + table.to_html())
    j = morph.merge(shreds, on="source_id", how="left").merge(cuts, on="source_id")
    ihm, shr = j["in_host_mask"].astype("boolean"), j["is_shred"].astype("boolean")
    dis = j[((ihm == True) & (shr == False)) | ((ihm == False) & (shr == True))]  # noqa: E712
    seg = read_segmentation(masks_path)
    size, pixscale = int(seg["size"]), float(seg["pixscale"])
    ex = disagreement_examples(dis, seg, max_examples)
    ncol = 1 + max(1, len(ex))
    fig, axes = plt.subplots(1, ncol, figsize=(2.6 * ncol, 3.1), squeeze=False)
    ax = axes[0, 0]
    counts = table.to_numpy()
    ax.imshow(counts, cmap="Blues")
    for (r, c), v in np.ndenumerate(counts):
        ax.text(c, r, str(v), ha="center", va="center", fontsize=9,
                color="white" if v > 0.6 * counts.max() else "black")
    ax.set_xticks(range(3), table.columns)
    ax.set_yticks(range(3), table.index)
    ax.set_xlabel("is_shred")
    ax.set_ylabel("in_host_mask")
    half = size // 8
    for ax, (s, h, x, y, surveys) in zip(axes[0, 1:], ex):
        x0 = int(np.clip(round(x) - half, 0, size - 2 * half))
        y0 = int(np.clip(round(y) - half, 0, size - 2 * half))
        ax.imshow(seg["images"][h][y0:y0 + 2 * half, x0:x0 + 2 * half], origin="upper")
        ax.contour(seg["host_masks"][h][y0:y0 + 2 * half, x0:x0 + 2 * half].astype(float),
                   levels=[0.5], colors="c", linewidths=0.8)
        ax.plot(x - x0, y - y0, "r+", ms=10)
        r_arcsec = np.hypot(x - (size - 1) / 2, y - (size - 1) / 2) * pixscale
        ax.set_title(f"mask {s['in_host_mask']} / shred {s['is_shred']}\n"
                     f"{surveys}, {r_arcsec:.0f}\" from host", fontsize=7)
    for ax in axes[0, 1:]:
        ax.axis("off")
    if not len(ex):
        axes[0, 1].text(0.5, 0.5, "no disagreements", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return table
