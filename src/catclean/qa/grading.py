"""The QA stage's steps: the functions the rules of ``workflow/rules/qa.smk`` call.

One function per rule (the rule scripts only read inputs, call it and write outputs);
``catclean qa evaluate`` (:mod:`.commands`) and the tests chain the same functions in one
process, and :class:`Grader` chains their per-exposure parts for one new exposure
(extraction -> features -> SOM mapping -> stamps -> inference), which is what a
production grading service and ``benchmarks/bench_qa_grade.py`` run.

====================  =====================================================
rule                  function
====================  =====================================================
qa_make_exposures     :func:`make_exposures`
qa_extract_sources    :func:`extract_sources`
qa_train_stellarity   :func:`train_stellarity`
qa_train_som          :func:`train_som`
qa_representatives    :func:`representatives`
qa_train_cnn          :func:`train_models`
qa_prepare_inference  :func:`prepare_inference`
qa_grade_exposures    :func:`grade_exposures`
qa_report             :func:`report`
====================  =====================================================

Settings: :func:`qa_settings` gives the complete ``qa`` settings of a resolved config (the
``qa`` section with the chosen preset's ``simulate``, ``som`` and ``models`` in place of
``presets``); every default is in ``workflow/schemas/qa.schema.yaml``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from catclean.config import preset_settings

from . import CLASS_COLUMNS, CLASSES
from .combiner import combine_ccds, fit_combiner, load_combiner
from .extract import (
    ExposurePixels,
    ExtractConfig,
    QAInputError,
    ccd_pool,
    process_exposure,
)
from .features import classical_metrics, som_features
from .models import ModelConfig, predict, train_model, validation_groups
from .represent import exposure_key, input2, representative_ccd
from .simulate import SimConfig, exposure_plan, make_exposure
from .som import BatchSOM, cluster_codebook
from .stellarity import Stellarity, roc_auc, stellarity_values

#: units of the Parquet outputs (``catclean.io.write_parquet``)
UNITS = {
    "exposures": {"exptime": "s", "fwhm": "arcsec", "trail_length": "arcsec",
                  "defocus_radius": "arcsec", "sky_mag": "mag/arcsec2"},
    "truth": {"x": "pix", "y": "pix", "mag": "mag"},
    "ccds": {"globalback": "adu", "globalrms": "adu", "exptime": "s", "r_ref": "pix"},
    "sources": {"x": "pix", "y": "pix", "npix": "pix2", "a": "pix", "b": "pix",
                "flux": "adu", "peak": "adu", "r50": "pix", "back": "adu", "exptime": "s"},
    "grades": {"fwhm_arcsec": "arcsec", "exptime": "s"},
}

#: stellarity is fitted on at most this many training detections (a random subset)
STELLARITY_MAX_ROWS = 400_000


def qa_settings(config: dict) -> dict:
    """The complete QA settings of a resolved config.

    The ``qa`` section's own keys (``enabled``, ``threads``, ``stamp``, ``extract``,
    ``grade``) plus the ``simulate``, ``som`` and ``models`` sections of the preset named by
    ``qa.preset`` (:func:`catclean.config.preset_settings`) and its name as ``preset``.
    """
    section = {k: v for k, v in config["qa"].items() if k != "presets"}
    return {**section, **preset_settings(config, "qa")}


# ----------------------------------------------------------------------------- simulate
def batch_plan(simulate: dict, seed: int, batch: int) -> list[dict]:
    """The exposures of batch ``batch`` (every ``n_batches``-th of the seeded plan)."""
    rows = exposure_plan(simulate["n_train_per_class"], simulate["n_test_per_class"], seed,
                         broken=simulate["include_broken"])
    nb = int(simulate["n_batches"])
    return [r for r in rows if r["index"] % nb == batch]


def make_exposures(simulate: dict, seed: int, batch: int, outdir: str | Path, progress=None):
    """Render the exposures of one batch into ``outdir`` (``simulate``: a preset's section).

    Returns (exposures DataFrame, per-source truth DataFrame).
    """
    sim = SimConfig.from_dict(simulate)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    recs, truths = [], []
    for r in batch_plan(simulate, seed, batch):
        rec, truth = make_exposure(r, outdir / f"{r['expid']}p.fits", sim, seed)
        recs.append(rec)
        t = pd.DataFrame(truth)
        t.insert(0, "expid", r["expid"])
        truths.append(t)
        if progress:
            progress(r)
    exposures = pd.DataFrame(recs)
    truth = pd.concat(truths, ignore_index=True) if truths else pd.DataFrame()
    return exposures, truth


# ----------------------------------------------------------------------------- extract
def extract_sources(exposures: pd.DataFrame, truth: pd.DataFrame | None, extract: dict,
                    pixel_scale: float, progress=None, workers: int = 1):
    """Source extraction for every exposure of a batch (``extract``: ``qa.extract``).

    ``workers`` > 1 extracts the CCDs of each exposure in that many processes
    (:func:`~catclean.qa.extract.ccd_pool`, one pool for the batch); the tables are the
    same as with one.

    Returns (ccds, sources, failures): per-CCD status table, per-source table, and one
    row (expid, status='failed', reason) per exposure that could not be read.
    """
    cfg = ExtractConfig.from_dict(extract)
    ccd_tabs, src_tabs, fails = [], [], []
    pool = ccd_pool(workers) if workers > 1 and len(exposures) else None
    try:
        for rec in exposures.itertuples():
            tt = None
            if truth is not None and len(truth):
                tt = truth[truth["expid"] == rec.expid]
            try:
                ccds, src = process_exposure(rec.path, cfg, pixel_scale, expid=rec.expid,
                                             truth=tt, n_ccd=_plan_n_ccd(rec), pool=pool)
            except QAInputError as exc:
                fails.append({"expid": rec.expid, "status": "failed", "reason": str(exc)})
                continue
            ccd_tabs.append(ccds)
            if len(src):
                src_tabs.append(src)
            if progress:
                progress(rec)
    finally:
        if pool is not None:
            pool.shutdown()
    ccds = pd.concat(ccd_tabs, ignore_index=True) if ccd_tabs else pd.DataFrame(
        columns=["expid", "ccd", "status", "reason", "globalback", "globalrms", "n_src",
                 "r_ref", "exptime"])
    sources = pd.concat(src_tabs, ignore_index=True) if src_tabs else pd.DataFrame()
    fails = pd.DataFrame(fails, columns=["expid", "status", "reason"])
    return ccds, sources, fails


def _plan_n_ccd(rec) -> int | None:
    """The plan's CCD count of an exposure record (``n_ccd``), if it has a valid one."""
    n = getattr(rec, "n_ccd", None)
    try:
        return int(n) if n is not None and np.isfinite(float(n)) else None
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------- stellarity
def train_stellarity(sources: pd.DataFrame, exposures: pd.DataFrame, seed: int,
                     backend: str):
    """Fit :class:`~catclean.qa.stellarity.Stellarity` on detections of training exposures
    and measure its ROC AUC against the simulator's star/galaxy truth on the test exposures
    (and Source Extractor's CLASS_STAR AUC with ``backend`` 'sextractor').

    Returns (model, metrics dict, (is_star, P(star)) of the test detections).
    """
    split = exposures.set_index("expid")["split"]
    sp = sources["expid"].map(split)
    known = sources["is_star"] >= 0
    tr = sources[known & (sp == "train")]
    te = sources[known & (sp == "test")]
    rng = np.random.default_rng([seed, 31])
    if len(tr) > STELLARITY_MAX_ROWS:
        tr = tr.iloc[np.sort(rng.choice(len(tr), STELLARITY_MAX_ROWS, replace=False))]
    model = Stellarity(seed=seed).fit(tr, tr["is_star"].to_numpy())
    metrics = {"n_train": int(len(tr)), "n_test": int(len(te)),
               "star_fraction_test": float(te["is_star"].mean()) if len(te) else float("nan"),
               "roc_auc_test": roc_auc(te["is_star"], model.predict(te)) if len(te) else float("nan")}
    bright = te[te["snr"] > 20]
    metrics["roc_auc_test_snr_gt_20"] = roc_auc(bright["is_star"], model.predict(bright)) \
        if len(bright) else float("nan")
    metrics["backend"] = backend
    if backend == "sextractor" and te["class_star"].notna().any():
        metrics["roc_auc_test_class_star"] = roc_auc(te["is_star"], te["class_star"])
    return model, metrics, (te["is_star"].to_numpy(), model.predict(te))


# -------------------------------------------------------------------------------- SOM
def train_som(sources: pd.DataFrame, exposures: pd.DataFrame, stellarity: Stellarity,
              som: dict, seed: int, threads: int, log=print):
    """Train the SOM on the features of training-exposure sources and cluster its codebook
    (``som``: a preset's section). Returns (som, unit -> cluster, training features)."""
    split = exposures.set_index("expid")["split"]
    tr = sources[sources["expid"].map(split) == "train"]
    rng = np.random.default_rng([seed, 41])
    if len(tr) > som["max_rows"]:
        tr = tr.iloc[np.sort(rng.choice(len(tr), som["max_rows"], replace=False))]
    feats = som_features(tr, stellarity_values(stellarity, tr))
    model = BatchSOM.from_config(som, seed)
    model.fit(feats, n_threads=threads)
    unit_cluster = cluster_codebook(model.weights, som["n_clusters"], seed)
    log(f"SOM trained on {len(feats)} sources; final quantisation error "
        f"{model.quantization_error[-1]:.3f}")
    return model, unit_cluster, feats


def assign_clusters(sources, stellarity: Stellarity, som: BatchSOM, unit_cluster):
    """(stellarity, SOM features, SOM cluster) of every source."""
    stel = stellarity_values(stellarity, sources)
    feats = som_features(sources, stel)
    cl = unit_cluster[som.predict(feats)] if len(feats) else np.zeros(0, np.int32)
    return stel, feats, cl


# -------------------------------------------------------------------------- represent
def representatives_for_exposure(expid, hdus_data: dict, ccds: pd.DataFrame,
                                 sources: pd.DataFrame, clusters: np.ndarray,
                                 n_clusters: int, stamp: int, seed: int):
    """Input-1/Input-2 of the usable CCDs of one exposure.

    ``hdus_data`` maps CCD index -> pixel array (or an
    :class:`~catclean.qa.extract.ExposurePixels`, which reads only the stamps); ``clusters`` is the SOM cluster of each
    row of ``sources``. Returns (ccd_indices, stamps, counts).
    """
    use = ccds[ccds["status"] == "ok"]
    out_ccd, out_st, out_ct = [], [], []
    src_ccd = sources["ccd"].to_numpy() if len(sources) else np.zeros(0, int)
    for row in use.itertuples():
        sel = src_ccd == row.ccd
        st, ct, _ = representative_ccd(
            hdus_data[row.ccd], sources["x"].to_numpy()[sel], sources["y"].to_numpy()[sel],
            clusters[sel], row.globalback, row.globalrms, n_clusters, stamp,
            exposure_key(expid, row.ccd, seed))
        out_ccd.append(row.ccd)
        out_st.append(st)
        out_ct.append(ct)
    if not out_ccd:
        return (np.zeros(0, int), np.zeros((0, n_clusters, stamp, stamp), np.float32),
                np.zeros((0, n_clusters), np.int32))
    return np.array(out_ccd), np.stack(out_st), np.stack(out_ct)


def representatives(exposures: pd.DataFrame, ccds: pd.DataFrame, sources: pd.DataFrame,
                    stellarity: Stellarity, som: BatchSOM, unit_cluster: np.ndarray,
                    stamp: int, seed: int):
    """Input-1/Input-2 of every usable CCD of a batch (re-reads the FITS pixels).

    Returns (reps, clusters): a dict of arrays (expid, ccd, stamps as float16, counts) and
    the per-source table (expid, ccd, stellarity, cluster).
    """
    stel, _, clusters = assign_clusters(sources, stellarity, som, unit_cluster)
    n_clusters = int(unit_cluster.max()) + 1
    E, C, S, N = [], [], [], []
    src_exp = sources["expid"].to_numpy() if len(sources) else np.zeros(0)
    for rec in exposures.itertuples():
        cc = ccds[ccds["expid"] == rec.expid]
        if not (cc["status"] == "ok").any():
            continue
        sel = src_exp == rec.expid
        with ExposurePixels(rec.path) as pixels:  # reads only the stamps
            k, st, ct = representatives_for_exposure(rec.expid, pixels, cc, sources[sel],
                                                     clusters[sel], n_clusters, stamp, seed)
        E += [rec.expid] * len(k)
        C.append(k)
        S.append(st.astype(np.float16))
        N.append(ct)
    if not E:
        reps = {"expid": np.zeros(0, np.int64), "ccd": np.zeros(0, np.int64),
                "stamps": np.zeros((0, n_clusters, stamp, stamp), np.float16),
                "counts": np.zeros((0, n_clusters), np.int32)}
    else:
        reps = {"expid": np.asarray(E), "ccd": np.concatenate(C), "stamps": np.concatenate(S),
                "counts": np.concatenate(N)}
    table = pd.DataFrame({"expid": sources["expid"].to_numpy() if len(sources) else [],
                          "ccd": sources["ccd"].to_numpy() if len(sources) else [],
                          "stellarity": stel, "cluster": clusters})
    return reps, table


def concat_reps(parts: list[dict]) -> dict:
    """One representative-image dict from several (batches)."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# ----------------------------------------------------------------------------- models
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


def _per_exposure(p, ex, yy, combiner):
    pe, ye, ee = [], [], []
    for e in np.unique(ex):
        pe.append(combine_ccds(p[ex == e], combiner))
        ye.append(yy[ex == e][0])
        ee.append(e)
    return np.array(pe).reshape(-1, len(CLASSES)), np.array(ye, int), ee


def _confusion(t, q):
    cm = np.zeros((len(CLASSES), len(CLASSES)), int)
    for a, b in zip(t, q):
        cm[a, b] += 1
    return cm.tolist()


def train_models(reps: dict, exposures: pd.DataFrame, models: dict, combine: str, seed: int,
                 log=print, kinds=("M1", "M2", "M3")):
    """Train M1/M2/M3 on the training exposures' CCDs (70/30 train/validation by exposure)
    and evaluate on the held-out test exposures, per CCD and per exposure.

    ``models``: a preset's section; ``combine``: ``qa.grade.combine``. TensorFlow must be
    set up first (:func:`catclean.runtime.setup` with ``tensorflow=True``). Returns
    (models by kind, metrics by kind, with the fitted combination rule as ``combiner``).
    """
    mcfg = ModelConfig.from_dict(models)
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
    out, metrics = {}, {}
    is_val = validation_groups(reps["expid"][tr], mcfg.val_fraction, seed, labels=y[tr])
    for kind in kinds:
        model, hist = train_model(kind, stamps[tr], in2[tr], y_fit[tr], reps["expid"][tr],
                                  mcfg, seed, nc, st, log, is_val=is_val)
        out[kind] = model
        # combination rule fitted on the validation exposures' CCDs (not the test ones)
        pv = predict(model, kind, stamps[tr][is_val], in2[tr][is_val])
        exv, yv = reps["expid"][tr][is_val], y[tr][is_val]
        uv = np.unique(exv)
        combiner = fit_combiner([pv[exv == e] for e in uv], [yv[exv == e][0] for e in uv],
                                seed) if combine == "trained" else None
        p = predict(model, kind, stamps[te], in2[te])
        acc_ccd = float((p.argmax(1) == y[te]).mean()) if te.any() else float("nan")
        ex = reps["expid"][te]
        pe, ye, ee = _per_exposure(p, ex, y[te], combiner)
        pm, _, _ = _per_exposure(p, ex, y[te], None)
        acc_exp, acc_ml = _accuracy(pe, ye), _accuracy(pm, ye)
        metrics[kind] = {"test_accuracy_ccd": acc_ccd, "test_accuracy_exposure": acc_exp,
                         "test_accuracy_exposure_mean_log": acc_ml,
                         "n_test_ccd": int(te.sum()), "n_test_exposures": int(len(ye)),
                         "best_val_accuracy_ccd": max(hist.get("val_accuracy", [np.nan])),
                         "epochs": len(hist["loss"]), "params": int(model.count_params()),
                         "confusion_exposure": _confusion(ye, pe.argmax(1)),
                         "confusion_exposure_mean_log": _confusion(ye, pm.argmax(1)),
                         "confusion_ccd": _confusion(y[te], p.argmax(1)),
                         "combine": combine, "combiner": combiner,
                         "test_exposures": {"expid": [str(e) for e in ee],
                                            "true": ye.tolist(),
                                            "pred": pe.argmax(1).tolist(),
                                            "pred_mean_log": pm.argmax(1).tolist()},
                         "history": hist}
        log(f"{kind}: test accuracy per CCD {acc_ccd:.3f}, per exposure {acc_exp:.3f} "
            f"({combine} combination; mean-log rule {acc_ml:.3f})"
            + (f"; combiner {combiner['rule']} lambda {combiner['lambda']}" if combiner else ""))
    return out, metrics


# ------------------------------------------------------------------------------ grade
def grade_rows(expids, ccds: pd.DataFrame, sources: pd.DataFrame, stellarity: np.ndarray,
               rep_expid: np.ndarray, p_ccd: np.ndarray, failures: pd.DataFrame,
               pixel_scale: float, combiner: dict | None = None) -> pd.DataFrame:
    """One output row per exposure from per-CCD probabilities and status tables.

    The per-exposure probabilities are :func:`~catclean.qa.combiner.combine_ccds` of the
    usable CCDs with ``combiner`` (None: softmax of the mean log-probability).

    ``status``: 'ok' (graded, every live CCD usable), 'flagged' (graded from the usable
    CCDs, some CCDs unusable: reason lists them), 'failed' (not graded: reason).
    """
    rows = []
    fail = dict(zip(failures["expid"], failures["reason"])) if len(failures) else {}
    src_exp = sources["expid"].to_numpy() if len(sources) else np.zeros(0)
    for e in expids:
        row = {"expid": e}
        row.update({c: np.nan for c in CLASS_COLUMNS})
        row.update({"pred_class": None, "n_dead_ccd": 0, "n_ccd": 0, "n_ccd_used": 0,
                    "fwhm_arcsec": np.nan, "ellipticity": np.nan, "n_psf_sources": 0,
                    "exptime": np.nan, "status": "failed", "reason": ""})
        if e in fail:
            row["reason"] = fail[e]
            rows.append(row)
            continue
        cc = ccds[ccds["expid"] == e]
        row["n_ccd"] = int(len(cc))
        row["n_dead_ccd"] = int((cc["status"] == "dead").sum())
        row["exptime"] = float(cc["exptime"].iloc[0]) if len(cc) else np.nan
        problems = [f"ccd {int(r.ccd)}: {r.reason}" for r in cc.itertuples()
                    if r.status in ("bad", "empty", "missing")]
        sel = src_exp == e
        fw, el, npsf = classical_metrics(sources[sel] if len(sources) else sources,
                                         stellarity[sel], pixel_scale)
        row.update({"fwhm_arcsec": fw, "ellipticity": el, "n_psf_sources": npsf})
        pk = p_ccd[rep_expid == e]
        row["n_ccd_used"] = int(len(pk))
        if len(pk) == 0:
            if len(cc) and (cc["status"] == "dead").all():
                row["reason"] = "all CCDs dead"
            elif int(sel.sum()) == 0:
                row["reason"] = ("no sources detected in any live CCD ("
                                 + "; ".join(problems[:3]) + ")")
            else:
                row["reason"] = "no usable CCD: " + "; ".join(problems[:5])
            rows.append(row)
            continue
        p = combine_ccds(pk, combiner)
        row.update(dict(zip(CLASS_COLUMNS, p.tolist())))
        row["pred_class"] = CLASSES[int(np.argmax(p))]
        row["status"] = "flagged" if problems else "ok"
        row["reason"] = "; ".join(problems)
        rows.append(row)
    return pd.DataFrame(rows)


def prepare_inference(model_path, reps: dict, kind: str, out_dir, seed: int,
                      n_calibration: int, n_check: int, batch_size: int = 256) -> dict:
    """The fast inference forms of the grading model (``qa.grade.model``) and its card
    (:func:`catclean.inference.prepare`): int8 calibrated on ``n_calibration`` of its own
    training samples (the representative images, seeded draw), bf16 and int8 compared
    with float32 on ``n_check`` others (max |dp| over the five class probabilities,
    arg-max class flips)."""
    import keras

    from catclean.inference import prepare

    from .models import model_inputs

    x = model_inputs(kind, reps["stamps"].astype(np.float32),
                     input2(reps["counts"]).astype(np.float32))
    n = len(x[0])
    order = np.random.default_rng([int(seed), 16]).permutation(n)
    n_cal = min(int(n_calibration), max(1, n // 4))
    cal, chk = np.sort(order[:n_cal]), np.sort(order[n_cal:n_cal + int(n_check)])
    if len(chk) == 0:
        raise ValueError(f"{n} representative images leave none to check the precisions on")
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    card = prepare(model, [a[cal] for a in x], [a[chk] for a in x], out_dir,
                   batch_size=batch_size)
    card.update(model=str(model_path), kind=kind)
    (Path(out_dir) / "card.json").write_text(json.dumps(card, indent=1))
    return card


def grade_exposures(exposures, ccds, sources, stel, failures, reps, model, grade: dict,
                    pixel_scale: float, combiner=None) -> pd.DataFrame:
    """One row per exposure with ``model`` (of kind ``grade['model']``); ``combiner`` is
    the rule of :func:`~catclean.qa.combiner.fit_combiner` (None: softmax of the mean
    log p); ``grade``: ``qa.grade`` (model, fwhm_max, ell_max)."""
    kind = grade["model"]
    if len(failures) == 0:
        failures = failures.reindex(columns=["expid", "status", "reason"])
    p = predict(model, kind, reps["stamps"].astype(np.float32), input2(reps["counts"]))
    out = grade_rows(exposures["expid"].tolist(), ccds, sources, stel, reps["expid"], p,
                     failures, pixel_scale, combiner=combiner)
    info = exposures.set_index("expid")
    out.insert(1, "split", info["split"].reindex(out["expid"]).to_numpy())
    out.insert(2, "true_class", info["label"].reindex(out["expid"]).to_numpy())
    out["true_n_dead_ccd"] = info["n_dead_ccd"].reindex(out["expid"]).to_numpy()
    out["classical_good"] = ((out["ellipticity"] < grade["ell_max"])
                             & (out["fwhm_arcsec"] < grade["fwhm_max"]))
    out["model"] = kind
    return out


# ----------------------------------------------------------------------------- report
def classical_vs_model(grades: pd.DataFrame, p_good_min: float) -> pd.DataFrame:
    """Exposures the classical cut calls good while the model gives P(Good) < p_good_min,
    by true class (paper Sec. 6)."""
    sel = grades["classical_good"].fillna(False).astype(bool) & (grades["p_good"] < p_good_min)
    tab = grades[sel].groupby("true_class").size().reindex(list(CLASSES), fill_value=0)
    tot = grades[grades["classical_good"].fillna(False).astype(bool)].groupby(
        "true_class").size().reindex(list(CLASSES), fill_value=0)
    return pd.DataFrame({"true_class": list(CLASSES), "classical_good": tot.to_numpy(),
                         "classical_good_but_p_good_low": tab.to_numpy()})


def report(grades: pd.DataFrame, metrics: dict, stellarity_metrics: dict, grade: dict):
    """The held-out test grades, their confusion matrix, the classical-cut table and the
    summary of the stage. Returns (test grades, confusion, classical table, summary)."""
    test = grades[(grades["split"] == "test") & (grades["status"] != "failed")]
    cm = np.zeros((len(CLASSES), len(CLASSES)), int)
    for t, p in zip(test["true_class"], test["pred_class"]):
        cm[CLASSES.index(t), CLASSES.index(p)] += 1
    tab = classical_vs_model(test, grade["p_good_min"])
    summary = {
        "accuracy": {k: {"per_ccd": metrics[k]["test_accuracy_ccd"],
                         "per_exposure": metrics[k]["test_accuracy_exposure"],
                         "per_exposure_mean_log": metrics[k].get("test_accuracy_exposure_mean_log"),
                         "combine": (metrics[k].get("combiner") or {}).get("rule", "mean_log"),
                         "n_test_exposures": metrics[k]["n_test_exposures"]}
                     for k in ("M1", "M2", "M3")},
        "graded_model": grade["model"],
        "confusion_test_exposures": cm.tolist(),
        "stellarity_roc_auc": stellarity_metrics.get("roc_auc_test"),
        "classical_good_but_p_good_low": {r.true_class: int(r.classical_good_but_p_good_low)
                                          for r in tab.itertuples()},
        "status_counts": grades["status"].value_counts().to_dict(),
    }
    return test, cm, tab, summary


# ------------------------------------------------------------------ one exposure
class Grader:
    """Grade single exposures with trained artefacts, all in one process.

    Parameters
    ----------
    stellarity_path, som_path, model_path : trained artefacts of the pipeline.
    settings : the complete QA settings (:func:`qa_settings`): ``extract``, ``stamp``,
        ``grade`` (``model`` is the kind of ``model_path``) and ``simulate.pixel_scale``.
    seed : the seed of the representative-source draws (the config's ``seed``).
    combiner : per-exposure combination rule: a dict from
        :func:`~catclean.qa.combiner.fit_combiner`, or the path of ``metrics/models.json``
        (the rule stored there for the model's kind); None: softmax of the mean log p.
    workers : processes extracting the CCDs of an exposure in parallel (default: the
        settings' ``threads``); 1 extracts in this process. The pool starts here, before
        the model is loaded, and lives until :meth:`close` (or the end of a ``with``).
    precision, inference_dir : the inference precision (``qa.grade.inference.precision``)
        and the directory of the model's inference card (``qa_prepare_inference``), as
        for the workflow's grading (:func:`catclean.inference.load_predictor`); without a
        card ``auto`` is float32. The model runs compiled, with one fixed batch of
        ``simulate.n_ccd`` samples (one per CCD), traced here, not in the first exposure.
    """

    def __init__(self, stellarity_path, som_path, model_path, settings: dict, seed: int,
                 combiner=None, workers: int | None = None, precision: str = "auto",
                 inference_dir=None):
        from catclean.inference import load_predictor

        self.workers = int(settings.get("threads", 1) if workers is None else workers)
        self.pool = ccd_pool(self.workers) if self.workers > 1 else None
        self.stellarity = Stellarity.load(stellarity_path)
        self.som, extra = BatchSOM.load(som_path)
        # load the fused BMU kernel now (numba's on-disk cache), not in the first exposure
        self.som.bmu(np.zeros((1, self.som.weights.shape[1]), np.float32))
        self.unit_cluster = extra["unit_cluster"]
        self.n_clusters = int(self.unit_cluster.max() + 1)
        _, self.model, self.precision_reason = load_predictor(
            model_path, precision, inference_dir, int(settings["simulate"]["n_ccd"]))
        self.model([np.zeros((1,) + sh, np.float32) for sh in self.model.input_shapes])
        self.kind = settings["grade"]["model"]
        self.extract = ExtractConfig.from_dict(settings["extract"])
        self.pixel_scale = settings["simulate"]["pixel_scale"]
        self.stamp, self.seed = settings["stamp"], seed
        if combiner is not None and not isinstance(combiner, dict):
            combiner = load_combiner(combiner, self.kind)
        self.combiner = combiner

    def grade(self, path, expid=None) -> tuple[dict, dict]:
        """Grade one exposure file; returns (output row, seconds per step)."""
        t = {}
        expid = Path(path).stem if expid is None else expid
        t0 = time.perf_counter()
        try:
            ccds, src = process_exposure(path, self.extract, self.pixel_scale, expid=expid,
                                         pool=self.pool)
        except QAInputError as exc:
            fails = pd.DataFrame([{"expid": expid, "status": "failed", "reason": str(exc)}])
            row = grade_rows([expid], pd.DataFrame(), pd.DataFrame(), np.zeros(0),
                             np.zeros(0), np.zeros((0, 5)), fails, self.pixel_scale)
            return row.iloc[0].to_dict(), {"extraction": time.perf_counter() - t0}
        t["extraction"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stel = stellarity_values(self.stellarity, src)
        feats = som_features(src, stel)
        t["features"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        clusters = self.unit_cluster[self.som.predict(feats)] if len(feats) else np.zeros(0, int)
        t["som_mapping"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with ExposurePixels(path) as pixels:
            kk, st, ct = representatives_for_exposure(expid, pixels, ccds, src, clusters,
                                                      self.n_clusters, self.stamp, self.seed)
        t["stamps"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        p = predict(self.model, self.kind, st, input2(ct)) if len(kk) else np.zeros((0, 5))
        t["inference"] = time.perf_counter() - t0
        row = grade_rows([expid], ccds, src, stel, np.array([expid] * len(kk), dtype=object),
                         p, pd.DataFrame(columns=["expid", "status", "reason"]),
                         self.pixel_scale, self.combiner)
        return row.iloc[0].to_dict(), t

    def close(self) -> None:
        """Stop the extraction workers."""
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def read_many(paths) -> pd.DataFrame:
    """Concatenate the Parquet tables of several batches (skipping empty ones)."""
    from catclean.io import read_parquet

    tabs = [read_parquet(p) for p in paths]
    tabs = [t for t in tabs if len(t)]
    return pd.concat(tabs, ignore_index=True) if tabs else pd.DataFrame()


def save_json(obj, path: str | Path) -> None:
    """Write ``obj`` as indented JSON (metrics files)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2))
