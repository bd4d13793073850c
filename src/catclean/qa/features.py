"""Per-exposure source tables, the stellarity classifier and the five SOM features.

Paper 000 Sec. 3.1 feeds the SOM with ISO0, ELLIPTICITY (1 - b/a), BACKGROUND,
CLASS_STAR and EXPTIME (capped at 30 s, Sec. 5). sep has no CLASS_STAR, so
:class:`Stellarity` is a gradient-boosted classifier on sep shape measurements,
trained on the simulator's star/galaxy truth, that outputs P(star) in [0, 1]. Its inputs
are relative to the CCD's own stellar locus (the small-size end of the high-S/N sources),
so it does not have to learn the seeing.

Feature conventions (all dimensionless):

* ISO0: isophotal area in pixels at the detection threshold, SOM input log10(ISO0);
* ELLIPTICITY: 1 - b/a;
* BACKGROUND: (local background at the centroid - CCD global background) / CCD rms,
  i.e. the background *fluctuation* plotted in the paper's Fig. 5;
* STELLARITY: P(star) of :class:`Stellarity` (or Source Extractor's CLASS_STAR);
* EXPTIME: min(EXPTIME, 30 s) / 30 s.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from . import FEATURES
from .extract import (
    ExtractConfig,
    QAInputError,
    ccd_data,
    ccd_status,
    extract_sep,
    match_truth,
    read_exposure,
)

EXPTIME_CAP = 30.0   # s, paper Sec. 5


def stellar_reference(r50: np.ndarray, snr: np.ndarray) -> float:
    """Half-light radius (pixels) of the CCD's stellar locus.

    The 20th percentile of r50 among sources with S/N > 20 (stars are the most compact
    bright objects); falls back to all sources, then to 2 pixels.
    """
    ok = np.isfinite(r50) & (r50 > 0)
    sel = ok & (snr > 20)
    if sel.sum() >= 5:
        return float(np.percentile(r50[sel], 20))
    if ok.sum() >= 3:
        return float(np.percentile(r50[ok], 20))
    return 2.0


STELLARITY_INPUTS = ("log_snr", "r50_rel", "log_r50", "conc", "ellip", "log_npix_rel",
                     "log_rref")


def stellarity_inputs(src: pd.DataFrame) -> np.ndarray:
    """The classifier inputs (see :data:`STELLARITY_INPUTS`) from a source table."""
    r50 = np.clip(src["r50"].to_numpy(float), 0.05, None)
    rref = src["r_ref"].to_numpy(float)
    flux = np.clip(src["flux"].to_numpy(float), 1e-3, None)
    peak = (src["peak"] - src["back"]).to_numpy(float)
    cols = [
        np.log10(np.clip(src["snr"].to_numpy(float), 0.1, None)),
        r50 / rref,
        np.log10(r50),
        peak / flux * rref ** 2,
        1.0 - src["b"].to_numpy(float) / src["a"].to_numpy(float),
        np.log10(np.clip(src["npix"].to_numpy(float), 1, None) / rref ** 2),
        np.log10(rref),
    ]
    return np.nan_to_num(np.column_stack(cols), nan=0.0, posinf=0.0, neginf=0.0)


class Stellarity:
    """P(star) from sep measurements: a HistGradientBoostingClassifier (scikit-learn).

    Parameters
    ----------
    seed : int
        Random seed of the classifier.
    """

    def __init__(self, seed: int = 0, max_iter: int = 100):
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.clf = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1,
                                                  max_leaf_nodes=31, random_state=seed)
        self.fitted = False

    def fit(self, src: pd.DataFrame, is_star: np.ndarray) -> Stellarity:
        self.clf.fit(stellarity_inputs(src), np.asarray(is_star, int))
        self.fitted = True
        return self

    def predict(self, src: pd.DataFrame) -> np.ndarray:
        if len(src) == 0:
            return np.zeros(0)
        return self.clf.predict_proba(stellarity_inputs(src))[:, 1]

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump({"format": "catclean.qa.stellarity/1", "clf": self.clf}, fh)

    @classmethod
    def load(cls, path: str | Path) -> Stellarity:
        """Load a classifier written by :meth:`save` (a pickle this pipeline wrote itself)."""
        with open(path, "rb") as fh:
            blob = pickle.load(fh)  # noqa: S301 - our own artefact
        if not isinstance(blob, dict) or blob.get("format") != "catclean.qa.stellarity/1":
            raise ValueError(f"{path}: not a catclean stellarity model")
        obj = cls.__new__(cls)
        obj.clf, obj.fitted = blob["clf"], True
        return obj


def stellarity_values(model: Stellarity, sources: pd.DataFrame) -> np.ndarray:
    """STELLARITY of each source: Source Extractor's CLASS_STAR when the backend
    measured it, else P(star) of the :class:`Stellarity` classifier."""
    if len(sources) == 0:
        return np.zeros(0)
    if "class_star" in sources and sources["class_star"].notna().all():
        return sources["class_star"].to_numpy(float)
    return model.predict(sources)


def roc_auc(y_true, score) -> float:
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true, int)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, score))


def process_exposure(path: str | Path, cfg: ExtractConfig, expid=None,
                     truth: pd.DataFrame | None = None, pixel_scale: float = 0.187,
                     keep_data: dict | None = None):
    """Extract sources from every CCD of one exposure.

    Parameters
    ----------
    path : exposure FITS file.
    cfg : extraction parameters; ``cfg.backend`` selects sep or Source Extractor.
    expid : identifier stored in the output tables (default: file stem).
    truth : optional per-source truth (columns ccd, x, y, mag, is_star) for the
        star/galaxy label ``is_star`` of each detection.

    Returns
    -------
    ccds : pandas.DataFrame
        One row per CCD: expid, ccd, status ('ok', 'dead', 'bad', 'empty'), reason,
        globalback, globalrms (ADU), n_src, r_ref (pixels), exptime (s).
    sources : pandas.DataFrame
        One row per detection with :data:`catclean.qa.extract.MEASUREMENT_COLUMNS`,
        expid, ccd, r_ref, exptime, class_star (NaN for sep) and is_star (-1 unknown).

    If ``keep_data`` is a dict, the pixels of every usable CCD are stored in it
    (CCD index -> float32 array) so callers need not read the file twice.

    Raises
    ------
    QAInputError
        When the whole exposure is unusable (corrupt file, missing EXPTIME).
    """
    expid = Path(path).stem if expid is None else expid
    exptime, hdul = read_exposure(path)
    ccd_rows, tables = [], []
    with hdul:
        for k, hdu in enumerate(hdul[1:]):
            data = ccd_data(hdu)
            status, reason = ccd_status(data)
            row = {"expid": expid, "ccd": k, "status": status, "reason": reason,
                   "globalback": np.nan, "globalrms": np.nan, "n_src": 0, "r_ref": np.nan,
                   "exptime": exptime}
            if status == "ok":
                if keep_data is not None:
                    keep_data[k] = data
                if cfg.backend == "sextractor":
                    from .sextractor import extract_sextractor

                    meas, info = extract_sextractor(data, cfg, exptime, pixel_scale)
                elif cfg.backend == "sep":
                    meas, info = extract_sep(data, cfg)
                else:
                    raise ValueError(f"qa.extract.backend: unknown backend {cfg.backend!r}")
                row["globalback"], row["globalrms"] = info["globalback"], info["globalrms"]
                n = len(meas["x"])
                row["n_src"] = n
                if n == 0:
                    row["status"], row["reason"] = "empty", "no sources detected"
                else:
                    t = pd.DataFrame(meas)
                    if "class_star" not in t:
                        t["class_star"] = np.nan
                    t.insert(0, "ccd", k)
                    t.insert(0, "expid", expid)
                    rref = stellar_reference(t["r50"].to_numpy(), t["snr"].to_numpy())
                    row["r_ref"] = rref
                    t["r_ref"] = rref
                    t["exptime"] = exptime
                    t["rel_back"] = (t["back"] - info["globalback"]) / info["globalrms"]
                    t["is_star"] = np.int8(-1)
                    if truth is not None:
                        tt = truth[truth["ccd"] == k]
                        t["is_star"] = match_truth(meas, tt["x"].to_numpy(), tt["y"].to_numpy(),
                                                   tt["mag"].to_numpy(), tt["is_star"].to_numpy())
                    tables.append(t)
            ccd_rows.append(row)
    ccds = pd.DataFrame(ccd_rows)
    sources = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["expid", "ccd", *list(MEAS_ALL)])
    return ccds, sources


MEAS_ALL = ("x", "y", "npix", "a", "b", "theta", "flux", "peak", "r50", "snr", "back", "flag",
            "class_star", "r_ref", "exptime", "rel_back", "is_star")


def som_features(sources: pd.DataFrame, stellarity: np.ndarray) -> np.ndarray:
    """The five paper features (Sec. 3.1) as an (n, 5) float32 array in :data:`FEATURES`
    order, before standardisation: log10 ISO0, ELLIPTICITY, BACKGROUND (clipped to
    +-50 rms), STELLARITY, min(EXPTIME, 30)/30."""
    if len(sources) == 0:
        return np.zeros((0, len(FEATURES)), np.float32)
    iso = np.log10(np.clip(sources["npix"].to_numpy(float), 1, None))
    ell = 1.0 - sources["b"].to_numpy(float) / sources["a"].to_numpy(float)
    bkg = np.clip(sources["rel_back"].to_numpy(float), -50, 50)
    exp = np.minimum(sources["exptime"].to_numpy(float), EXPTIME_CAP) / EXPTIME_CAP
    return np.nan_to_num(np.column_stack([iso, ell, bkg, stellarity, exp])).astype(np.float32)


def classical_metrics(sources: pd.DataFrame, stellarity: np.ndarray, pixel_scale: float,
                      saturation: float = 50000.0) -> tuple[float, float, int]:
    """Median FWHM (arcsec) and ellipticity of bright point sources (paper Sec. 6).

    Bright point sources: S/N > 30, peak below ``saturation`` ADU, stellarity >= 0.5;
    if fewer than 5, the S/N > 30 unsaturated sources in the lowest 30% of r50 (the
    stellar locus). FWHM is estimated as 2 x half-light radius (exact for a Gaussian).

    Returns (fwhm_arcsec, ellipticity, n_used); NaN when no source qualifies.
    """
    if len(sources) == 0:
        return float("nan"), float("nan"), 0
    snr = sources["snr"].to_numpy(float)
    peak = sources["peak"].to_numpy(float)
    r50 = sources["r50"].to_numpy(float)
    base = (snr > 30) & (peak < saturation) & np.isfinite(r50) & (r50 > 0)
    sel = base & (np.asarray(stellarity) >= 0.5)
    if sel.sum() < 5 and base.sum() >= 3:
        sel = base & (r50 <= np.percentile(r50[base], 30))
    if sel.sum() == 0:
        return float("nan"), float("nan"), 0
    ell = 1.0 - sources["b"].to_numpy(float) / sources["a"].to_numpy(float)
    return (float(np.median(2.0 * r50[sel]) * pixel_scale), float(np.median(ell[sel])),
            int(sel.sum()))


__all__ = ["Stellarity", "stellarity_values", "process_exposure", "som_features", "classical_metrics",
           "stellar_reference", "roc_auc", "QAInputError"]
