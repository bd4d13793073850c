"""Config handling and the stage steps as plain functions (used by the rule scripts and,
chained by :func:`run_stage`, by the tests).

The ``qa`` config section (validated by ``workflow/schemas/qa.schema.yaml``; every key is
described in ``config/README.md``) has the sub-sections ``simulate``, ``extract``,
``som``, ``models`` and ``grade``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import CLASSES
from .extract import ExtractConfig
from .features import Stellarity, som_features, stellarity_values
from .models import (
    ModelConfig,
    combine_ccds,
    fit_combiner,
    predict,
    setup_tf,
    train_model,
    validation_groups,
)
from .pipeline import (
    extract_batch,
    grade_rows,
    representatives_batch,
    simulate_batch,
    train_stellarity,
)
from .represent import input2
from .simulate import SimConfig, exposure_plan
from .som import BatchSOM, cluster_codebook

DEFAULTS = {
    "simulate": {"n_ccd": 8, "ccd_shape": [1024, 512], "n_train_per_class": 20,
                 "n_test_per_class": 6, "include_broken": True, "n_batches": 2},
    "extract": {"backend": "sep"},
    "som": {"rows": 15, "cols": 15, "sigma0": 3.0, "sigma_end": 0.7, "n_iter": 30,
            "chunk": 8192, "max_rows": 3_000_000, "n_clusters": 20},
    "stamp": 25,
    "models": {},
    "grade": {"model": "M3", "combine": "trained", "fwhm_max": 1.5, "ell_max": 0.2,
              "p_good_min": 0.2},
    "threads": 2,
}


PAPER_PRESET = {
    # paper 000: 36 CCDs of 2048x4612 (Sec. 2), 15x15 SOM, 200 iterations (Sec. 3.1),
    # five conv layers in M1/M3 (Sec. 3.3); ~60,000 CCD images for training (Sec. 4)
    "simulate": {"n_ccd": 36, "ccd_shape": [4612, 2048], "n_train_per_class": 340,
                 "n_test_per_class": 60, "n_batches": 100},
    "som": {"rows": 15, "cols": 15, "sigma0": 3.0, "n_iter": 200, "n_clusters": 20,
            "max_rows": 3_000_000},
    "models": {"conv_filters": [32, 32, 64, 64, 128], "pool_after": [1, 3],
               "stamp_embedding": 64, "dense_units": 256, "m2_units": [256, 128],
               "epochs": 30, "patience": 8},
}


def qa_config(cfg: dict | None) -> dict:
    """The ``qa`` section with defaults filled in (two levels deep); ``preset: paper``
    overrides the keys of :data:`PAPER_PRESET`."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for k, v in (cfg or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    if out.get("preset") == "paper":
        for k, v in PAPER_PRESET.items():
            out[k].update(v)
    return out


def plan(qa: dict, seed: int) -> list[dict]:
    s = qa["simulate"]
    return exposure_plan(s["n_train_per_class"], s["n_test_per_class"], seed,
                         broken=s.get("include_broken", True))


def batch_rows(qa: dict, seed: int, batch: int) -> list[dict]:
    rows = plan(qa, seed)
    nb = int(qa["simulate"]["n_batches"])
    return [r for r in rows if r["index"] % nb == batch]


def step_simulate(qa, seed, batch, outdir, progress=None):
    sim = SimConfig.from_dict(qa["simulate"])
    return simulate_batch(batch_rows(qa, seed, batch), outdir, sim, seed, progress)


def step_extract(qa, exposures, truth, progress=None):
    return extract_batch(exposures, ExtractConfig.from_dict(qa["extract"]), truth,
                         qa["simulate"].get("pixel_scale", 0.187), progress)


def step_som(qa, seed, sources, exposures, stellarity: Stellarity, log=print):
    """Train the SOM on the features of training-exposure sources and cluster it."""
    s = qa["som"]
    split = exposures.set_index("expid")["split"]
    tr = sources[sources["expid"].map(split) == "train"]
    rng = np.random.default_rng([seed, 41])
    if len(tr) > s["max_rows"]:
        tr = tr.iloc[np.sort(rng.choice(len(tr), s["max_rows"], replace=False))]
    feats = som_features(tr, stellarity_values(stellarity, tr))
    som = BatchSOM(s["rows"], s["cols"], s["sigma0"], s["sigma_end"], s["n_iter"], s["chunk"],
                   seed)
    som.fit(feats, n_threads=qa.get("threads"))
    unit_cluster = cluster_codebook(som.weights, s["n_clusters"], seed)
    log(f"SOM trained on {len(feats)} sources; final quantisation error "
        f"{som.quantization_error[-1]:.3f}")
    return som, unit_cluster, feats


def assign_clusters(sources, stellarity: Stellarity, som: BatchSOM, unit_cluster):
    stel = stellarity_values(stellarity, sources)
    feats = som_features(sources, stel)
    cl = unit_cluster[som.predict(feats)] if len(feats) else np.zeros(0, np.int32)
    return stel, feats, cl


def _accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float((p.argmax(1) == y).mean()) if len(y) else float("nan")


def ccd_training_labels(exposures: pd.DataFrame, expid: np.ndarray, ccd: np.ndarray,
                        y: np.ndarray, mcfg: ModelConfig) -> np.ndarray:
    """Training targets of CCD rows ``(expid, ccd)`` whose exposure classes are ``y``.

    With ``mcfg.ccd_labels == 'truth'`` a CCD of a BGP exposure whose simulated background
    pattern stays below ``mcfg.bgp_min_amplitude`` of the sky (column ``bgp_ccd_amp`` of the
    exposure table: a scattered-light ring or glow far from that CCD) is labelled Good: the
    CCD shows no background problem, and training it as BGP teaches the networks that clean
    CCDs are sometimes BGP (per-CCD label noise). Exposures without the column (real,
    human-labelled data) keep their exposure class on every CCD.
    """
    y = np.asarray(y, int).copy()
    if mcfg.ccd_labels == "exposure" or "bgp_ccd_amp" not in exposures:
        return y
    if mcfg.ccd_labels != "truth":
        raise ValueError(f"qa.models.ccd_labels {mcfg.ccd_labels!r}: expected 'truth' or "
                         "'exposure'")
    amp = {e: [float(a) for a in str(v).split(",") if a not in ("", "nan")]
           for e, v in zip(exposures["expid"], exposures["bgp_ccd_amp"].fillna(""))}
    bgp, good = CLASSES.index("BGP"), CLASSES.index("Good")
    for i in np.flatnonzero(y == bgp):
        a = amp.get(expid[i], [])
        if int(ccd[i]) < len(a) and a[int(ccd[i])] < mcfg.bgp_min_amplitude:
            y[i] = good
    return y


def step_models(qa, seed, reps: dict, exposures: pd.DataFrame, log=print, kinds=("M1", "M2", "M3")):
    """Train M1/M2/M3 on the training exposures' CCDs (70/30 train/validation by exposure)
    and evaluate on the held-out test exposures, per CCD and per exposure."""
    mcfg = ModelConfig.from_dict(qa["models"])
    setup_tf(qa.get("threads", 2), seed)
    info = exposures.set_index("expid")
    label = info["label"].map({c: i for i, c in enumerate(CLASSES)})
    y = label.reindex(reps["expid"]).to_numpy().astype(int)
    # per-CCD training targets (y stays the exposure class: splits, combiner, accuracies)
    y_fit = ccd_training_labels(exposures, reps["expid"], reps["ccd"], y, mcfg)
    split = info["split"].reindex(reps["expid"]).to_numpy()
    n_relabelled = int((y_fit != y)[split == "train"].sum())
    if n_relabelled:
        log(f"{n_relabelled} training CCDs of BGP exposures without a visible pattern "
            f"(< {mcfg.bgp_min_amplitude:.0%} of the sky) trained as Good")
    defect = info["defect"].reindex(reps["expid"]).fillna("").to_numpy()
    stamps = reps["stamps"].astype(np.float32)
    in2 = input2(reps["counts"])
    tr = split == "train"
    te = (split == "test") & (defect == "")
    nc, st = stamps.shape[1], stamps.shape[2]
    models, metrics = {}, {}
    is_val = validation_groups(reps["expid"][tr], mcfg.val_fraction, seed, labels=y[tr])
    rule = qa["grade"].get("combine", "trained")

    def per_exposure(p, ex, yy, combiner):
        pe, ye, ee = [], [], []
        for e in np.unique(ex):
            pe.append(combine_ccds(p[ex == e], combiner))
            ye.append(yy[ex == e][0])
            ee.append(e)
        return np.array(pe).reshape(-1, len(CLASSES)), np.array(ye, int), ee

    def confusion(t, q):
        cm = np.zeros((len(CLASSES), len(CLASSES)), int)
        for a, b in zip(t, q):
            cm[a, b] += 1
        return cm.tolist()

    for kind in kinds:
        model, hist = train_model(kind, stamps[tr], in2[tr], y_fit[tr], reps["expid"][tr],
                                  mcfg, seed, nc, st, log, is_val=is_val)
        models[kind] = model
        # combination rule fitted on the validation exposures' CCDs (not the test ones)
        pv = predict(model, kind, stamps[tr][is_val], in2[tr][is_val])
        exv, yv = reps["expid"][tr][is_val], y[tr][is_val]
        uv = np.unique(exv)
        combiner = fit_combiner([pv[exv == e] for e in uv], [yv[exv == e][0] for e in uv],
                                seed) if rule == "trained" else None
        p = predict(model, kind, stamps[te], in2[te])
        acc_ccd = float((p.argmax(1) == y[te]).mean()) if te.any() else float("nan")
        ex = reps["expid"][te]
        pe, ye, ee = per_exposure(p, ex, y[te], combiner)
        pm, _, _ = per_exposure(p, ex, y[te], None)
        acc_exp, acc_ml = _accuracy(pe, ye), _accuracy(pm, ye)
        metrics[kind] = {"test_accuracy_ccd": acc_ccd, "test_accuracy_exposure": acc_exp,
                         "test_accuracy_exposure_mean_log": acc_ml,
                         "n_test_ccd": int(te.sum()), "n_test_exposures": int(len(ye)),
                         "best_val_accuracy_ccd": max(hist.get("val_accuracy", [np.nan])),
                         "epochs": len(hist["loss"]), "params": int(model.count_params()),
                         "confusion_exposure": confusion(ye, pe.argmax(1)),
                         "confusion_exposure_mean_log": confusion(ye, pm.argmax(1)),
                         "confusion_ccd": confusion(y[te], p.argmax(1)),
                         "combine": rule, "combiner": combiner,
                         "test_exposures": {"expid": [str(e) for e in ee],
                                            "true": ye.tolist(),
                                            "pred": pe.argmax(1).tolist(),
                                            "pred_mean_log": pm.argmax(1).tolist()},
                         "history": hist}
        log(f"{kind}: test accuracy per CCD {acc_ccd:.3f}, per exposure {acc_exp:.3f} "
            f"({rule} combination; mean-log rule {acc_ml:.3f})"
            + (f"; combiner {combiner['rule']} lambda {combiner['lambda']}" if combiner else ""))
    return models, metrics


def step_grade(qa, exposures, ccds, sources, stel, failures, reps, model, kind="M3",
               combiner=None):
    """One row per exposure; ``combiner`` is the combination rule of
    :func:`~catclean.qa.models.fit_combiner` (None: softmax of the mean log p)."""
    p = predict(model, kind, reps["stamps"].astype(np.float32), input2(reps["counts"]))
    g = qa["grade"]
    out = grade_rows(exposures["expid"].tolist(), ccds, sources, stel, reps["expid"], p,
                     failures, qa["simulate"].get("pixel_scale", 0.187), g["fwhm_max"],
                     g["ell_max"], combiner=combiner)
    info = exposures.set_index("expid")
    out.insert(1, "split", info["split"].reindex(out["expid"]).to_numpy())
    out.insert(2, "true_class", info["label"].reindex(out["expid"]).to_numpy())
    out["true_n_dead_ccd"] = info["n_dead_ccd"].reindex(out["expid"]).to_numpy()
    out["classical_good"] = (out["ellipticity"] < g["ell_max"]) & (out["fwhm_arcsec"] < g["fwhm_max"])
    return out


def classical_vs_model(grades: pd.DataFrame, p_good_min: float = 0.2) -> pd.DataFrame:
    """Exposures the classical cut calls good while the model gives P(Good) < p_good_min,
    by true class (paper Sec. 6)."""
    sel = grades["classical_good"].fillna(False).astype(bool) & (grades["p_good"] < p_good_min)
    tab = grades[sel].groupby("true_class").size().reindex(list(CLASSES), fill_value=0)
    tot = grades[grades["classical_good"].fillna(False).astype(bool)].groupby(
        "true_class").size().reindex(list(CLASSES), fill_value=0)
    return pd.DataFrame({"true_class": list(CLASSES), "classical_good": tot.to_numpy(),
                         "classical_good_but_p_good_low": tab.to_numpy()})


def prepare_stage(qa_cfg: dict, seed: int, workdir: str | Path, log=print) -> dict:
    """The data steps in-process: simulate, extract, stellarity, SOM, representatives.

    Returns the intermediate products (everything :func:`finish_stage` needs)."""
    qa = qa_config(qa_cfg)
    workdir = Path(workdir)
    exps, truths, ccds, srcs, fails = [], [], [], [], []
    for b in range(int(qa["simulate"]["n_batches"])):
        count = [0]

        def progress(_r, what="simulated", count=count, b=b):
            count[0] += 1
            if count[0] % 50 == 0:
                log(f"batch {b}: {count[0]} exposures {what}")

        e, t = step_simulate(qa, seed, b, workdir / f"b{b}", progress)
        count[0] = 0
        c, s, f = step_extract(qa, e, t, lambda r: progress(r, "extracted"))
        exps.append(e)
        truths.append(t)
        ccds.append(c)
        srcs.append(s)
        fails.append(f)
    exposures = pd.concat(exps, ignore_index=True)
    ccds = pd.concat(ccds, ignore_index=True)
    sources = pd.concat([s for s in srcs if len(s)], ignore_index=True)
    failures = pd.concat(fails, ignore_index=True)
    split = exposures.set_index("expid")["split"]
    stellarity, stel_metrics = train_stellarity(sources, split, seed)
    log(f"stellarity: {json.dumps(stel_metrics)}")
    som, unit_cluster, _ = step_som(qa, seed, sources, exposures, stellarity, log)
    stel, feats, clusters = assign_clusters(sources, stellarity, som, unit_cluster)
    reps = representatives_batch(exposures, ccds, sources, clusters,
                                 qa["som"]["n_clusters"], qa["stamp"], seed)
    return {"qa": qa, "exposures": exposures, "ccds": ccds, "sources": sources,
            "failures": failures, "stellarity": stellarity, "stellarity_metrics": stel_metrics,
            "som": som, "unit_cluster": unit_cluster, "features": feats, "clusters": clusters,
            "stel": stel, "reps": reps}


def finish_stage(res: dict, seed: int, log=print) -> dict:
    """The model steps on the products of :func:`prepare_stage`: train M1/M2/M3, evaluate
    them and grade every exposure; adds ``models``, ``metrics`` and ``grades`` to ``res``."""
    qa = res["qa"]
    models, metrics = step_models(qa, seed, res["reps"], res["exposures"], log)
    kind = qa["grade"]["model"]
    grades = step_grade(qa, res["exposures"], res["ccds"], res["sources"], res["stel"],
                        res["failures"], res["reps"], models[kind], kind,
                        combiner=metrics[kind].get("combiner"))
    return {**res, "models": models, "metrics": metrics, "grades": grades}


def run_stage(qa_cfg: dict, seed: int, workdir: str | Path, log=print) -> dict:
    """Run every step in-process (tests, quick experiments); returns all intermediate
    products. The Snakemake rules run the same steps as separate jobs."""
    return finish_stage(prepare_stage(qa_cfg, seed, workdir, log), seed, log)
