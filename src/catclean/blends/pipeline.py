"""Stage driver used by the rule scripts and the tests: simulate -> train -> evaluate.

Configuration: the ``blends`` section of ``config/config.yaml`` (see config/README.md).
``preset`` picks one entry of ``presets`` (data and network sizes); :func:`resolve`
merges it into a flat settings dict.
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
from .settings import DEFAULT_PRESET, resolve  # noqa: F401  (re-exported)

log = logging.getLogger("catclean.blends")

METHODS = ("blend2flux", "blend2mask2flux", "sep")

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


def train_all(train: dict, val: dict, settings: dict, seed: int, outdir,
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


def run_baseline(test: dict, settings: dict | None = None):
    """sep cold/hot baseline on a test set (Sec. 3.3)."""
    b = (settings or {}).get("baseline", {})
    return sep_baseline(test["images"], test["comp_xy"], test["R_each"][:, 0],
                        cold=b.get("cold"), hot=b.get("hot"))


def evaluate(test: dict, model_paths: dict, settings: dict | None = None) -> dict:
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
