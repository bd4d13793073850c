"""Batch steps of the QA stage and the single-exposure :class:`Grader`.

The Snakemake rules call these functions (one call per batch of exposures); the
:class:`Grader` chains the same functions for one new exposure in one process
(extraction -> features -> SOM mapping -> stamps -> inference), which is what a
production grading service and ``benchmarks/bench_qa_grade.py`` run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import CLASS_COLUMNS, CLASSES
from .extract import ExtractConfig, QAInputError, ccd_data, read_exposure
from .features import (
    Stellarity,
    classical_metrics,
    process_exposure,
    roc_auc,
    som_features,
    stellarity_values,
)
from .models import combine_ccds, load_combiner, predict
from .represent import exposure_key, input2, representative_ccd
from .simulate import SimConfig, make_exposure


# ----------------------------------------------------------------------------- simulate
def simulate_batch(rows: list[dict], outdir: str | Path, sim: SimConfig, seed: int,
                   progress=None):
    """Render the exposures of one batch into ``outdir``.

    Returns (exposures DataFrame, per-source truth DataFrame).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    recs, truths = [], []
    for r in rows:
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
def extract_batch(exposures: pd.DataFrame, cfg: ExtractConfig, truth: pd.DataFrame | None,
                  pixel_scale: float = 0.187, progress=None):
    """Source extraction for every exposure of a batch.

    Returns (ccds, sources, failures): per-CCD status table, per-source table, and one
    row (expid, status='failed', reason) per exposure that could not be read.
    """
    ccd_tabs, src_tabs, fails = [], [], []
    for rec in exposures.itertuples():
        tt = None
        if truth is not None and len(truth):
            tt = truth[truth["expid"] == rec.expid]
        try:
            ccds, src = process_exposure(rec.path, cfg, expid=rec.expid, truth=tt,
                                         pixel_scale=pixel_scale)
        except QAInputError as exc:
            fails.append({"expid": rec.expid, "status": "failed", "reason": str(exc)})
            continue
        ccd_tabs.append(ccds)
        if len(src):
            src_tabs.append(src)
        if progress:
            progress(rec)
    ccds = pd.concat(ccd_tabs, ignore_index=True) if ccd_tabs else pd.DataFrame(
        columns=["expid", "ccd", "status", "reason", "globalback", "globalrms", "n_src",
                 "r_ref", "exptime"])
    sources = pd.concat(src_tabs, ignore_index=True) if src_tabs else pd.DataFrame()
    fails = pd.DataFrame(fails, columns=["expid", "status", "reason"])
    return ccds, sources, fails


# ------------------------------------------------------------------------- stellarity
def train_stellarity(sources: pd.DataFrame, split: pd.Series, seed: int,
                     max_rows: int = 400_000):
    """Fit :class:`Stellarity` on detections of training exposures and measure its ROC AUC
    against the simulator's star/galaxy truth on the test exposures.

    ``split`` maps expid -> 'train' / 'test'. Returns (model, metrics dict).
    """
    sp = sources["expid"].map(split)
    known = sources["is_star"] >= 0
    tr = sources[known & (sp == "train")]
    te = sources[known & (sp == "test")]
    rng = np.random.default_rng([seed, 31])
    if len(tr) > max_rows:
        tr = tr.iloc[np.sort(rng.choice(len(tr), max_rows, replace=False))]
    model = Stellarity(seed=seed).fit(tr, tr["is_star"].to_numpy())
    metrics = {"n_train": int(len(tr)), "n_test": int(len(te)),
               "star_fraction_test": float(te["is_star"].mean()) if len(te) else float("nan"),
               "roc_auc_test": roc_auc(te["is_star"], model.predict(te)) if len(te) else float("nan")}
    bright = te[te["snr"] > 20]
    metrics["roc_auc_test_snr_gt_20"] = roc_auc(bright["is_star"], model.predict(bright)) \
        if len(bright) else float("nan")
    return model, metrics


# -------------------------------------------------------------------------- represent
def representatives_for_exposure(expid, hdus_data: dict, ccds: pd.DataFrame,
                                 sources: pd.DataFrame, clusters: np.ndarray,
                                 n_clusters: int, stamp: int, seed: int):
    """Input-1/Input-2 of the usable CCDs of one exposure.

    ``hdus_data`` maps CCD index -> pixel array; ``clusters`` is the SOM cluster of each
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


def representatives_batch(exposures: pd.DataFrame, ccds: pd.DataFrame, sources: pd.DataFrame,
                          clusters: np.ndarray, n_clusters: int, stamp: int, seed: int):
    """Input-1/Input-2 of every usable CCD of a batch (re-reads the FITS pixels).

    Returns a dict of arrays: expid, ccd, stamps (float16), counts.
    """
    E, C, S, N = [], [], [], []
    src_exp = sources["expid"].to_numpy() if len(sources) else np.zeros(0)
    for rec in exposures.itertuples():
        cc = ccds[ccds["expid"] == rec.expid]
        if not (cc["status"] == "ok").any():
            continue
        sel = src_exp == rec.expid
        _, hdul = read_exposure(rec.path)
        with hdul:
            data = {int(k): ccd_data(hdul[k + 1]) for k in cc.loc[cc["status"] == "ok", "ccd"]}
        k, st, ct = representatives_for_exposure(rec.expid, data, cc, sources[sel],
                                                 clusters[sel], n_clusters, stamp, seed)
        E += [rec.expid] * len(k)
        C.append(k)
        S.append(st.astype(np.float16))
        N.append(ct)
    if not E:
        return {"expid": np.zeros(0, np.int64), "ccd": np.zeros(0, np.int64),
                "stamps": np.zeros((0, n_clusters, stamp, stamp), np.float16),
                "counts": np.zeros((0, n_clusters), np.int32)}
    return {"expid": np.asarray(E), "ccd": np.concatenate(C), "stamps": np.concatenate(S),
            "counts": np.concatenate(N)}


# ------------------------------------------------------------------------------ grade
def grade_rows(expids, ccds: pd.DataFrame, sources: pd.DataFrame, stellarity: np.ndarray,
               rep_expid: np.ndarray, p_ccd: np.ndarray, failures: pd.DataFrame,
               pixel_scale: float, fwhm_max: float, ell_max: float,
               combiner: dict | None = None) -> pd.DataFrame:
    """One output row per exposure from per-CCD probabilities and status tables.

    The per-exposure probabilities are :func:`~catclean.qa.models.combine_ccds` of the
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
                    if r.status in ("bad", "empty")]
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


OUTPUT_UNITS = {"fwhm_arcsec": "arcsec", "exptime": "s"}


class Grader:
    """Grade single exposures with trained artefacts, all in one process.

    Parameters
    ----------
    stellarity_path, som_path, model_path : trained artefacts of the pipeline.
    kind : 'M1', 'M2' or 'M3'.
    combiner : per-exposure combination rule: a dict from
        :func:`~catclean.qa.models.fit_combiner`, or the path of ``metrics/models.json``
        (the rule stored there for ``kind``); None: softmax of the mean log p.
    """

    def __init__(self, stellarity_path, som_path, model_path, kind: str = "M3",
                 extract: ExtractConfig | None = None, pixel_scale: float = 0.187,
                 n_clusters: int | None = None, stamp: int = 25, seed: int = 0,
                 fwhm_max: float = 1.5, ell_max: float = 0.2, combiner=None):
        from .models import load_model
        from .som import BatchSOM

        self.stellarity = Stellarity.load(stellarity_path)
        self.som, extra = BatchSOM.load(som_path)
        self.unit_cluster = extra["unit_cluster"]
        self.n_clusters = int(n_clusters or self.unit_cluster.max() + 1)
        self.model = load_model(model_path)
        self.kind, self.extract = kind, extract or ExtractConfig()
        self.pixel_scale, self.stamp, self.seed = pixel_scale, stamp, seed
        self.fwhm_max, self.ell_max = fwhm_max, ell_max
        if combiner is not None and not isinstance(combiner, dict):
            combiner = load_combiner(combiner, kind)
        self.combiner = combiner

    def grade(self, path, expid=None) -> tuple[dict, dict]:
        """Grade one exposure file; returns (output row, seconds per step)."""
        t = {}
        expid = Path(path).stem if expid is None else expid
        t0 = time.perf_counter()
        data: dict = {}
        try:
            ccds, src = process_exposure(path, self.extract, expid=expid,
                                         pixel_scale=self.pixel_scale, keep_data=data)
        except QAInputError as exc:
            fails = pd.DataFrame([{"expid": expid, "status": "failed", "reason": str(exc)}])
            row = grade_rows([expid], pd.DataFrame(), pd.DataFrame(), np.zeros(0),
                             np.zeros(0), np.zeros((0, 5)), fails, self.pixel_scale,
                             self.fwhm_max, self.ell_max)
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
        kk, st, ct = representatives_for_exposure(expid, data, ccds, src, clusters,
                                                  self.n_clusters, self.stamp, self.seed)
        t["stamps"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        p = predict(self.model, self.kind, st, input2(ct)) if len(kk) else np.zeros((0, 5))
        t["inference"] = time.perf_counter() - t0
        row = grade_rows([expid], ccds, src, stel, np.array([expid] * len(kk), dtype=object),
                         p, pd.DataFrame(columns=["expid", "status", "reason"]),
                         self.pixel_scale, self.fwhm_max, self.ell_max, self.combiner)
        return row.iloc[0].to_dict(), t
