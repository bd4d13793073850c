"""The blends stage (paper 002): the functions its rules call, and their in-memory cores.

Rules (``workflow/rules/blends.smk``), the ``catclean blends`` commands and the tests all
go through this module:

- :func:`make_blends` (rule ``make_blends``) -- :func:`simulate` isolated GalSim galaxies,
  split them by galaxy and build the train / val / test blends;
- :func:`train_models` (rule ``train_blend_models``) -- :func:`train_networks`:
  blend2flux, the U-Net and blend2mask2flux;
- :func:`evaluate` (rule ``evaluate_blends``, ``catclean blends evaluate``) --
  :func:`evaluate_models` against the sep cold/hot baseline, metrics table and figures;
- :func:`deblend` (rule ``deblend``) -- deblended fluxes of one catalog partition
  (:func:`catclean.blends.apply.deblend_partition`).

``settings`` is the flat dict of :func:`catclean.blends.settings.stage_settings` (the
chosen preset's sizes, ``sim``, ``pairing`` and ``baseline`` of the resolved config).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from . import MORPHOLOGIES
from .blending import make_blend_set, split_galaxies
from .galaxies import GalaxySimConfig, make_galaxies
from .metrics import iou, iou_summary, per_galaxy_table, split_tables, summarize
from .photometry import sep_baseline

log = logging.getLogger("catclean.blends")

METHODS = ("blend2flux", "blend2mask2flux", "sep")
NETWORKS = ("blend2flux", "unet", "blend2mask2flux")
GALAXY_UNITS = {"flux_model": "nanomaggy", "flux_iso": "nanomaggy", "mag_model": "mag",
                "mag_iso": "mag", "r_eff": "arcsec", "beta": "rad", "psf_fwhm": "arcsec",
                "R_pix": "pix"}


def simulate(settings: dict, seed: int, progress=None) -> dict:
    """Render galaxies, split them (Sec. 2.3), and build train / val / test blends.

    Returns ``{"galaxies": DataFrame (with a ``split`` column), "train": ..., "val": ...,
    "test": ...}``; every random draw comes from ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    simcfg = GalaxySimConfig.from_config(settings["sim"])
    gals = make_galaxies(int(settings["n_galaxies"]), simcfg, rng, progress=progress)
    tab = gals.table
    ok_ids = tab.loc[tab["ok"], "gal_id"].to_numpy()
    p = settings["pairing"]
    tr_ids, te_ids = split_galaxies(ok_ids, p["test_fraction"], rng)
    split = np.full(len(tab), "rejected", dtype=object)
    split[tr_ids], split[te_ids] = "train", "test"
    tab["split"] = pd.Series(split, dtype="string")
    rules = {k: p[k] for k in ("max_dmag", "min_sep_R", "max_sep_frac")}
    n_train = int(settings["n_train"])
    n_val = max(1, int(round(p["val_fraction"] * n_train)))
    stamp = int(settings["stamp"])
    pool = make_blend_set(gals, tr_ids, n_train, stamp, rng, **rules)
    val = {k: v[n_train - n_val:] for k, v in pool.items()}
    train = {k: v[:n_train - n_val] for k, v in pool.items()}
    test = make_blend_set(gals, te_ids, int(settings["n_test"]), stamp, rng, **rules)
    return {"galaxies": tab, "train": train, "val": val, "test": test}


def save_set(path, data: dict) -> None:
    """Save a blend set (dict of arrays) as an uncompressed ``.npz``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **data)


def load_set(path) -> dict:
    """Load a blend set written by :func:`save_set`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"blend set not found: {path}")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def train_networks(train: dict, val: dict, settings: dict, seed: int, outdir,
                   verbose: int = 2) -> dict:
    """Train blend2flux, the U-Net, and blend2mask2flux; save them as ``.keras``.

    Returns the training histories (also written to ``outdir/history.json``).
    """
    import keras

    from . import models as M

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    stamp, bs, pat = int(settings["stamp"]), int(settings["batch_size"]), int(settings["patience"])
    hist = {}

    keras.utils.set_random_seed(seed)
    bn = bool(settings["batchnorm"])
    b2f = M.build_blend2flux(stamp, int(settings["b2f_filters"]), batchnorm=bn)
    M.compile_flux(b2f, float(settings["learning_rate"]))
    log.info("blend2flux: %d parameters", b2f.count_params())
    hist["blend2flux"] = M.fit(b2f, train, val, "flux", int(settings["epochs"]), bs, seed,
                               patience=pat, verbose=verbose)
    b2f.save(outdir / "blend2flux.keras")

    keras.utils.set_random_seed(seed + 1)
    unet, core = M.build_unet(stamp, int(settings["unet_depth"]), int(settings["unet_filters"]))
    M.compile_unet(unet, float(settings["learning_rate"]))
    log.info("U-Net: %d parameters", unet.count_params())
    # Sec. 3.2: "reduced batch size for the U-Net training" (more steps per epoch)
    hist["unet"] = M.fit(unet, train, val, "masks", int(settings["unet_epochs"]),
                         int(settings["unet_batch_size"]), seed + 1, patience=pat,
                         verbose=verbose)
    unet.save(outdir / "unet.keras")

    # Sec. 3.2: pretrained U-Net inside blend2mask2flux, trained end to end
    # (flux MAPE + 0.1 x segmentation BCE). The U-Net core is shared, so copy its
    # pretrained weights into a fresh core to keep the saved U-Net untouched.
    # Warm-up (our addition): the fresh flux network is first trained for
    # `warmup_epochs` with the U-Net frozen; otherwise its large initial MAPE gradients
    # wreck the pretrained masks before the flux head has learnt to use them.
    keras.utils.set_random_seed(seed + 2)
    _, core2 = M.build_unet(stamp, int(settings["unet_depth"]), int(settings["unet_filters"]))
    core2.set_weights(core.get_weights())
    b2m2f = M.build_blend2mask2flux(stamp, core2, int(settings["b2m2f_filters"]), batchnorm=bn)
    log.info("blend2mask2flux: %d parameters", b2m2f.count_params())
    hist["blend2mask2flux_warmup"] = {}
    if int(settings["warmup_epochs"]) > 0:
        core2.trainable = False
        M.compile_b2m2f(b2m2f, float(settings["learning_rate"]), float(settings["seg_weight"]))
        hist["blend2mask2flux_warmup"] = M.fit(
            b2m2f, train, val, "both", int(settings["warmup_epochs"]), bs, seed + 3,
            patience=pat, verbose=verbose)
        core2.trainable = True
    M.compile_b2m2f(b2m2f, float(settings["e2e_learning_rate"]), float(settings["seg_weight"]))
    hist["blend2mask2flux"] = M.fit(b2m2f, train, val, "both", int(settings["e2e_epochs"]), bs,
                                    seed + 2, patience=pat, verbose=verbose)
    b2m2f.save(outdir / "blend2mask2flux.keras")
    (outdir / "history.json").write_text(json.dumps(hist, indent=1))
    return hist


def run_baseline(test: dict, settings: dict):
    """sep cold/hot baseline on a test set (Sec. 3.3), parameters ``settings["baseline"]``."""
    b = settings["baseline"]
    return sep_baseline(test["images"], test["comp_xy"], test["R_each"][:, 0],
                        cold=b["cold"], hot=b["hot"])


def evaluate_models(test: dict, model_paths: dict, settings: dict) -> dict:
    """Run the networks and the baseline on the test blends and compute every metric.

    Parameters
    ----------
    model_paths : dict
        ``{"blend2flux": path, "unet": path, "blend2mask2flux": path}`` (any subset).

    Returns
    -------
    dict with ``per_galaxy`` (DataFrame), ``tables`` (dict of DataFrames), ``summary``
    (JSON-ready dict: overall metrics per method, IoU, baseline case fractions),
    ``iou`` (dict of (n, 2) arrays) and ``baseline`` (:class:`BaselineResult`).
    """
    from . import models as M

    base = run_baseline(test, settings)
    fluxes, ious, masks = {}, {}, {}
    for name in ("blend2flux", "blend2mask2flux"):
        if name in model_paths:
            model = M.load_model(model_paths[name])
            fluxes[name] = M.predict_flux(model, test["images"])
            if name == "blend2mask2flux":
                masks[name] = M.predict_masks(model, test["images"])
    if "unet" in model_paths:
        masks["unet"] = M.predict_masks(M.load_model(model_paths["unet"]), test["images"])
    for k, v in masks.items():
        ious[k] = iou(v, test["masks"])
    fluxes["sep"] = base.flux
    df = per_galaxy_table(test, fluxes, base.case)
    tables = split_tables(df)
    summary = {"n_blends": int(len(test["flux"])), "methods": {}, "iou": {},
               "baseline_cases": {c: float(np.mean(base.case == c))
                                  for c in ("two", "under", "over")},
               "baseline_hot_fraction": float(np.mean(base.mode == "hot"))}
    for method, g in df.groupby("method", sort=False):
        summary["methods"][method] = summarize(g["mag_pred"], g["mag_iso"], g["flux_pred"],
                                               g["flux_iso"])
        summary["methods"][method]["by_case"] = {
            c: summarize(h["mag_pred"], h["mag_iso"], h["flux_pred"], h["flux_iso"])
            for c, h in g.groupby("case")}
    summary["iou"] = iou_summary(ious.get("unet"), ious.get("blend2mask2flux"),
                                 test["morph"])
    sep_s = summary["methods"]["sep"]
    for method in ("blend2flux", "blend2mask2flux"):
        if method in summary["methods"]:
            m = summary["methods"][method]
            m["scatter_ratio_vs_sep"] = float(sep_s["scatter"] / m["scatter"])
            m["nmad_ratio_vs_sep"] = float(sep_s["nmad"] / m["nmad"])
    return {"per_galaxy": df, "tables": tables, "summary": summary, "iou": ious,
            "baseline": base, "morph_names": list(MORPHOLOGIES)}


def make_blends(settings: dict, seed: int, out, prov: dict | None = None) -> dict:
    """Rule ``make_blends``: simulate and write ``out["galaxies"]`` (Parquet),
    ``out["train"]``, ``out["val"]``, ``out["test"]`` (``.npz``) and ``out["examples"]``
    (figure). ``prov`` is the galaxies table's provenance record."""
    from ..io import write_parquet
    from . import plots

    log.info("settings: %s", json.dumps(settings))
    data = simulate(settings, int(seed))
    gal = data["galaxies"]
    log.info("galaxies: %d rendered, %d ok, %d train, %d test", len(gal), int(gal["ok"].sum()),
             int((gal["split"] == "train").sum()), int((gal["split"] == "test").sum()))
    for name in ("train", "val", "test"):
        save_set(out[name], data[name])
        log.info("%s: %d blends", name, len(data[name]["flux"]))
    write_parquet(gal, out["galaxies"], units=GALAXY_UNITS, prov=prov)
    plots.examples(data["test"], out["examples"])
    return data


def train_models(train_path, val_path, settings: dict, seed: int, outdir) -> dict:
    """Rule ``train_blend_models``: :func:`train_networks` on the saved train / val sets,
    models and ``history.json`` into ``outdir``; Keras' per-epoch lines go to stderr
    (the rule's log)."""
    import contextlib
    import sys

    train, val = load_set(train_path), load_set(val_path)
    with contextlib.redirect_stdout(sys.stderr):
        return train_networks(train, val, settings, int(seed), outdir, verbose=2)


def evaluate(test_path, model_paths: dict, settings: dict, out) -> dict:
    """Rule ``evaluate_blends``: networks vs the sep baseline on the test blends (Sec. 4).

    Writes ``out["metrics"]`` (JSON summary), ``out["csv"]`` (split tables),
    ``out["html"]`` and the figures ``out["fig5"]``, ``fig6``, ``fig7``, ``fig8``,
    ``fig_iou``.
    """
    from . import plots

    test = load_set(test_path)
    res = evaluate_models(test, model_paths, settings)
    summary = res["summary"]
    summary["preset"] = settings["preset"]
    Path(out["metrics"]).write_text(json.dumps(summary, indent=1, default=float))
    tables = res["tables"]
    long = pd.concat([t.assign(split=name) for name, t in tables.items()], ignore_index=True)
    long.to_csv(out["csv"], index=False, float_format="%.4f")
    html = ["<html><head><meta charset='utf-8'><title>Blends metrics</title></head><body>",
            "<h1>Photometry of blended pairs (paper 002): test-set metrics</h1>",
            "<p>dmag = mag_blend - mag_isolated; scatter = std(dmag); outliers |dmag| &gt; "
            "0.75; MAPE on flux (%). sep: galaxies it missed are excluded (see completeness, "
            "outlier_frac_all).</p>"]
    if summary["iou"]:
        html.append("<h2>Mask IoU</h2>"
                    + pd.DataFrame(summary["iou"]).T.to_html(float_format="%.3f"))
    for name, t in tables.items():
        html.append(f"<h2>{name}</h2>" + t.to_html(index=False, float_format="%.3f"))
    html.append("</body></html>")
    Path(out["html"]).write_text("\n".join(html))
    df = res["per_galaxy"]
    plots.fig5(df, out["fig5"])
    plots.fig6(df, out["fig6"])
    plots.fig7(df, out["fig7"])
    plots.fig8(tables, out["fig8"])
    plots.fig_iou(res["iou"], test["morph"], res["morph_names"], out["fig_iou"])
    for m, s in summary["methods"].items():
        log.info("%s: MAPE %.2f%% bias %.3f scatter %.3f outliers %.3f completeness %.3f", m,
                 s["mape"], s["bias"], s["scatter"], s["outlier_frac"], s["completeness"])
    log.info("IoU: %s", json.dumps(summary["iou"]))
    return res


def deblend(cuts_path, store_path, model_path, model_name: str, pixel_scale: float,
            apply_cfg: dict, out_path, prov: dict | None = None) -> pd.DataFrame:
    """Rule ``deblend``: deblended r fluxes for the blended sources of one partition
    (:func:`catclean.blends.apply.deblend_partition`), written to ``out_path``."""
    from ..cutouts import CutoutStore
    from ..io import read_parquet, write_parquet
    from . import apply
    from . import models as M

    cuts = read_parquet(cuts_path)
    store_path = Path(store_path)
    store = CutoutStore(store_path) if (store_path / "index.parquet").exists() else None
    if store is None:
        log.warning("no cutout store index at %s: blended sources get cutout_missing",
                    store_path)
    out = apply.deblend_partition(cuts, store, M.load_model(model_path), model_name,
                                  pixel_scale=float(pixel_scale), cfg=apply_cfg)
    log.info("%d sources, %d blended, %d deblended; reasons: %s", len(out),
             int(out["is_blended"].sum()), int(out[f"blend_flux_r_{model_name}"].notna().sum()),
             out["blends_reason"].value_counts(dropna=False).to_dict())
    write_parquet(out, out_path, units=apply.units(model_name), prov=prov)
    return out
