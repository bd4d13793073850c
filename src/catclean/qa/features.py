"""The five SOM features and the classical image-quality metrics (paper 000 Sec. 3.1, 6).

Paper 000 Sec. 3.1 feeds the SOM with ISO0, ELLIPTICITY (1 - b/a), BACKGROUND,
CLASS_STAR and EXPTIME (capped at 30 s, Sec. 5); STELLARITY replaces CLASS_STAR for sep
(:mod:`.stellarity`).

Feature conventions (all dimensionless):

* ISO0: isophotal area in pixels at the detection threshold, SOM input log10(ISO0);
* ELLIPTICITY: 1 - b/a;
* BACKGROUND: (local background at the centroid - CCD global background) / CCD rms,
  i.e. the background *fluctuation* plotted in the paper's Fig. 5;
* STELLARITY: P(star) of :class:`~catclean.qa.stellarity.Stellarity` (or Source
  Extractor's CLASS_STAR);
* EXPTIME: min(EXPTIME, 30 s) / 30 s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import FEATURES

EXPTIME_CAP = 30.0   # s, paper Sec. 5


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
