"""Photometric and segmentation metrics of paper 002 Sec. 4.

- ``dmag = mag_blend - mag_isolated`` (AB, zero point 22.5 for nanomaggies);
- bias = mean(dmag), scatter = std(dmag) (sigma_mag of Fig. 5-6) and the robust
  ``nmad = 1.4826 * median(|dmag - median|)``;
- outlier fraction: ``|dmag| > 0.75`` (a factor 2 in flux, Sec. 4.1);
- flux MAPE (Eq. 1), in percent;
- mask IoU (Eq. 2) per galaxy, masks thresholded at 0.5.

Galaxies a method did not measure (the sep baseline misses one galaxy of an
under-deblended pair) are excluded from bias / scatter / MAPE / outliers and counted in
``completeness``; ``outlier_frac_all`` counts them as outliers too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import MORPHOLOGIES, ZERO_POINT

OUTLIER_DMAG = 0.75
DMAG_BINS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
SEP_BINS = (0.0, 1.0, 2.0, 4.0, 8.0, np.inf)


def flux_to_mag(flux) -> np.ndarray:
    """AB magnitude of a flux in nanomaggies; NaN for non-positive or missing flux."""
    f = np.asarray(flux, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(f > 0, ZERO_POINT - 2.5 * np.log10(np.where(f > 0, f, 1.0)), np.nan)


def summarize(mag_pred, mag_true, flux_pred, flux_true) -> dict:
    """Bias, scatter, NMAD, outlier fractions, MAPE and completeness of one sample."""
    mag_pred = np.asarray(mag_pred, float)
    dmag = mag_pred - np.asarray(mag_true, float)
    ok = np.isfinite(dmag)
    n = int(dmag.size)
    d = dmag[ok]
    fp, ft = np.asarray(flux_pred, float)[ok], np.asarray(flux_true, float)[ok]
    out = {"n": n, "n_measured": int(ok.sum()),
           "completeness": float(ok.mean()) if n else float("nan")}
    if d.size:
        med = np.median(d)
        out.update(
            bias=float(d.mean()), scatter=float(d.std()), median=float(med),
            nmad=float(1.4826 * np.median(np.abs(d - med))),
            outlier_frac=float(np.mean(np.abs(d) > OUTLIER_DMAG)),
            outlier_frac_all=float((np.sum(np.abs(d) > OUTLIER_DMAG) + (n - d.size)) / n),
            mape=float(100.0 * np.mean(np.abs((fp - ft) / ft))),
        )
    else:
        out.update(bias=np.nan, scatter=np.nan, median=np.nan, nmad=np.nan,
                   outlier_frac=np.nan, outlier_frac_all=1.0 if n else np.nan, mape=np.nan)
    return out


def iou(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per-mask IoU (Eq. 2). ``pred``, ``truth``: (n, N, N, 2) -> (n, 2); NaN if both empty."""
    p = np.asarray(pred) > threshold
    t = np.asarray(truth) > 0.5
    inter = np.sum(p & t, axis=(1, 2)).astype(float)
    union = np.sum(p | t, axis=(1, 2)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def per_galaxy_table(test: dict, fluxes: dict[str, np.ndarray], case: np.ndarray
                     ) -> pd.DataFrame:
    """Long table, one row per (method, blend, galaxy role).

    Parameters
    ----------
    test : dict
        Test blend set (see :func:`catclean.blends.blending.make_blend_set`).
    fluxes : dict
        method name -> predicted fluxes (n, 2) in nanomaggies.
    case : ndarray of str
        sep baseline case per blend (``two``, ``under``, ``over``), used to split every
        method as in Fig. 6.
    """
    n = len(test["flux"])
    rows = []
    dmag_pair = test["mag"][:, 0] - test["mag"][:, 1]
    sep_over_R = test["sep_pix"] / np.maximum(test["R_each"][:, 0], 1e-6)
    for method, f in fluxes.items():
        for j, role in enumerate(("central", "companion")):
            rows.append(pd.DataFrame({
                "method": method, "role": role, "blend": np.arange(n),
                "case": np.asarray(case).astype(str),
                "morph": np.array(MORPHOLOGIES)[test["morph"][:, j]],
                "dmag_pair": dmag_pair, "sep_over_Rcen": sep_over_R,
                "mag_iso": test["mag"][:, j], "flux_iso": test["flux"][:, j],
                "flux_pred": f[:, j], "mag_pred": flux_to_mag(f[:, j]),
            }))
    df = pd.concat(rows, ignore_index=True)
    df["dmag"] = df["mag_pred"] - df["mag_iso"]
    return df


def _group(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    recs = []
    for key, g in df.groupby(by, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rec = dict(zip(by, key))
        rec.update(summarize(g["mag_pred"], g["mag_iso"], g["flux_pred"], g["flux_iso"]))
        recs.append(rec)
    return pd.DataFrame(recs)


def split_tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Summary tables: overall, by role, by sep case, dmag bin, separation bin, morphology."""
    d = df.copy()
    d["dmag_bin"] = pd.cut(d["dmag_pair"], DMAG_BINS, include_lowest=True).astype(str)
    d["sep_bin"] = pd.cut(d["sep_over_Rcen"], SEP_BINS, right=False).astype(str)
    return {
        "overall": _group(d, ["method"]),
        "role": _group(d, ["method", "role"]),
        "case": _group(d, ["method", "case"]),
        "dmag_bin": _group(d, ["method", "role", "dmag_bin"]),
        "sep_bin": _group(d, ["method", "sep_bin"]),
        "morph": _group(d, ["method", "morph"]),
    }


def iou_summary(iou_unet: np.ndarray | None, iou_b2m2f: np.ndarray | None,
                morph: np.ndarray) -> dict:
    """Mean IoU for the U-Net alone and after end-to-end training (Sec. 4.4, Fig. 12)."""
    out = {}
    for name, v in (("unet", iou_unet), ("blend2mask2flux", iou_b2m2f)):
        if v is None:
            continue
        rec = {"mean": float(np.nanmean(v)), "central": float(np.nanmean(v[:, 0])),
               "companion": float(np.nanmean(v[:, 1]))}
        for k, m in enumerate(MORPHOLOGIES):
            sel = morph == k
            if sel.any():
                rec[f"morph_{m}"] = float(np.nanmean(v[sel]))
        out[name] = rec
    return out
