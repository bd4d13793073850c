"""sep photometry: Kron (FLUX_AUTO-like) fluxes and the cold/hot Source Extractor baseline.

The baseline follows paper 002 Sec. 3.3: sep (Barbary 2016) in a *cold* mode on every
blend, then a *hot* mode on the images where cold finds a single object, with the
parameters of Table 3, and the assignment rules

(i)   exactly two detections: the pairing detection <-> (central, companion) with the
      smallest summed distance to the true positions ("closest detection");
(ii)  one detection: central if its centroid lies within 0.5 R_cen of the stamp centre,
      otherwise companion; the other galaxy is missed;
(iii) more than two: the two brightest detections, then as (i).

Images are background-subtracted flux maps (nanomaggies per pixel); the detection noise
is a sigma-clipped robust RMS of the stamp (:func:`robust_sigma`) unless given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sep

KRON_FACTOR = 2.5  # SExtractor PHOT_AUTOPARAMS 2.5, 3.5
KRON_MIN_DIAM = 3.5  # pixels

CASES = ("two", "under", "over")


def _c(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img, dtype=np.float64)


def robust_sigma(img: np.ndarray, nsig: float = 3.0, iters: int = 5) -> float:
    """Sigma-clipped robust RMS (1.4826 MAD) of a sky-subtracted stamp, in image units."""
    v = np.asarray(img, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    for _ in range(iters):
        med = np.median(v)
        s = 1.4826 * np.median(np.abs(v - med))
        if not s > 0:
            break
        keep = np.abs(v - med) < nsig * s
        if keep.all():
            break
        v = v[keep]
    s = 1.4826 * np.median(np.abs(v - np.median(v)))
    return float(s) if s > 0 else float(np.std(v))


def extract(img: np.ndarray, sigma: float, thresh: float, minarea: int, deblend_cont: float,
            deblend_nthresh: int = 32):
    """Run ``sep.extract`` with a segmentation map; returns ``(objects, segmap)``.

    ``thresh`` is in units of ``sigma`` (the per-pixel noise, image units).
    """
    data = _c(img)
    return sep.extract(data, thresh, err=float(sigma), minarea=int(minarea),
                       deblend_cont=float(deblend_cont), deblend_nthresh=int(deblend_nthresh),
                       segmentation_map=True)


def kron_flux(img: np.ndarray, objects, segmap: np.ndarray) -> np.ndarray:
    """FLUX_AUTO-like Kron fluxes of sep ``objects`` (image units, e.g. nanomaggies).

    Pixels of other detected objects are masked through the segmentation map (as
    SExtractor's MASK_TYPE BLANK); apertures of 2.5 Kron radii, at least 3.5 px across.
    """
    if len(objects) == 0:
        return np.zeros(0)
    data = _c(img)
    x, y = objects["x"], objects["y"]
    a, b = np.maximum(objects["a"], 1e-3), np.maximum(objects["b"], 1e-3)
    theta = np.clip(objects["theta"], -np.pi / 2, np.pi / 2)
    seg_id = np.arange(1, len(objects) + 1, dtype=np.int32)
    seg = np.ascontiguousarray(segmap, dtype=np.int32)
    kr, _ = sep.kron_radius(data, x, y, a, b, theta, 6.0, segmap=seg, seg_id=seg_id)
    kr = np.where(np.isfinite(kr) & (kr > 0), kr, 1.0)
    flux, _, _ = sep.sum_ellipse(data, x, y, a, b, theta, KRON_FACTOR * kr, subpix=1,
                                 segmap=seg, seg_id=seg_id)
    r_min = KRON_MIN_DIAM / 2
    small = kr * np.sqrt(a * b) < r_min
    if small.any():
        cflux, _, _ = sep.sum_circle(data, x[small], y[small], r_min, subpix=1,
                                     segmap=seg, seg_id=seg_id[small])
        flux = np.where(small, 0.0, flux)
        flux[small] = cflux
    return np.asarray(flux, dtype=np.float64)


def isolated_measurement(img: np.ndarray, sigma: float, thresh: float = 1.5, minarea: int = 5):
    """Truth measurement on an isolated stamp (Sec. 2.1 and 3): Kron flux and segmentation.

    The central galaxy is the detection closest to the stamp centre; deblending is off
    (``deblend_cont=1``), because the stamp holds one galaxy by construction.

    Returns
    -------
    flux : float
        Kron flux (image units), NaN if nothing is detected within 5 px of the centre.
    mask : ndarray of bool
        Segmentation map of the central galaxy.
    """
    objs, seg = extract(img, sigma, thresh, minarea, deblend_cont=1.0)
    h, w = img.shape
    mask = np.zeros((h, w), dtype=bool)
    if len(objs) == 0:
        return float("nan"), mask
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    d = np.hypot(objs["x"] - c[0], objs["y"] - c[1])
    k = int(np.argmin(d))
    if d[k] > 5.0:
        return float("nan"), mask
    flux = kron_flux(img, objs, seg)[k]
    return float(flux), seg == (k + 1)


@dataclass
class BaselineResult:
    """sep baseline output for a set of blends (arrays of length n)."""

    flux: np.ndarray  # (n, 2) central, companion; NaN where the galaxy was missed
    n_found: np.ndarray  # (n,) detections used (cold, or hot where cold found one)
    mode: np.ndarray  # (n,) 'cold' or 'hot'
    case: np.ndarray  # (n,) 'two', 'under' (0 or 1 found) or 'over'


def _assign_pair(xy: np.ndarray, flux: np.ndarray, truth_xy: np.ndarray) -> np.ndarray:
    """Rule (i): pair two detections with (central, companion) by the closest positions."""
    d_same = np.hypot(*(xy[0] - truth_xy[0])) + np.hypot(*(xy[1] - truth_xy[1]))
    d_swap = np.hypot(*(xy[0] - truth_xy[1])) + np.hypot(*(xy[1] - truth_xy[0]))
    return flux[[0, 1]] if d_same <= d_swap else flux[[1, 0]]


def sep_baseline_one(img: np.ndarray, comp_xy: tuple[float, float], r_cen_pix: float,
                     cold: dict, hot: dict, sigma: float | None = None):
    """Cold/hot sep deblending and photometry of one blend stamp (paper 002 Sec. 3.3).

    Parameters
    ----------
    img : ndarray (H, W)
        Blend stamp, sky-subtracted, image units (nanomaggies per pixel).
    comp_xy : (float, float)
        True companion centre (x, y) in 0-based pixels (the central one is the centre).
    r_cen_pix : float
        Effective radius of the central galaxy in pixels (rule ii).
    sigma : float, optional
        Per-pixel noise; estimated with :func:`robust_sigma` if not given.
    cold, hot : dict
        sep parameters ``thresh, minarea, deblend_cont, deblend_nthresh`` of the two
        passes (``blends.baseline``; Table 3 by default).

    Returns
    -------
    flux : ndarray (2,)
        Kron fluxes of (central, companion); NaN where missed.
    n_found : int
    mode : str
    case : str
    """
    img = np.where(np.isfinite(img), img, 0.0)
    if sigma is None:
        sigma = robust_sigma(img)
    out = np.full(2, np.nan)
    if not np.isfinite(sigma) or sigma <= 0:
        return out, 0, "cold", "under"
    objs, seg = extract(img, sigma, **cold)
    mode = "cold"
    if len(objs) == 1:
        objs, seg = extract(img, sigma, **hot)
        mode = "hot"
    n = len(objs)
    h, w = img.shape
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    truth_xy = np.array([centre, np.asarray(comp_xy, dtype=float)])
    if n == 0:
        return out, 0, mode, "under"
    flux = kron_flux(img, objs, seg)
    xy = np.column_stack([objs["x"], objs["y"]])
    if n == 1:  # rule (ii)
        if np.hypot(*(xy[0] - centre)) <= 0.5 * r_cen_pix:
            out[0] = flux[0]
        else:
            out[1] = flux[0]
        return out, 1, mode, "under"
    case = "two" if n == 2 else "over"
    if n > 2:  # rule (iii): the two brightest
        top = np.argsort(flux)[::-1][:2]
        xy, flux = xy[top], flux[top]
    return _assign_pair(xy, flux, truth_xy), n, mode, case


def sep_baseline(images: np.ndarray, comp_xy: np.ndarray, r_cen_pix: np.ndarray,
                 cold: dict, hot: dict, sigma: np.ndarray | float | None = None
                 ) -> BaselineResult:
    """Vectorised wrapper of :func:`sep_baseline_one` over a stack of blends ``(n, H, W)``."""
    n = len(images)
    flux = np.full((n, 2), np.nan)
    n_found = np.zeros(n, dtype=np.int64)
    mode = np.empty(n, dtype=object)
    case = np.empty(n, dtype=object)
    sig = np.broadcast_to(np.asarray(np.nan if sigma is None else sigma, dtype=float), (n,))
    for i in range(n):
        s = None if not np.isfinite(sig[i]) else float(sig[i])
        flux[i], n_found[i], mode[i], case[i] = sep_baseline_one(
            images[i], tuple(comp_xy[i]), float(r_cen_pix[i]), cold=cold, hot=hot, sigma=s)
    return BaselineResult(flux=flux, n_found=n_found, mode=mode.astype(str),
                          case=case.astype(str))
