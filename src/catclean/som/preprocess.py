"""Cutout preprocessing for the SOM (paper 004 Sec. 3.1 steps 1-5 and Sec. 8.1).

Per channel (Sec. 8.1 recipe for VLASS, generalised)::

    noise  = sigma-clipped MAD rms of the non-zero finite pixels     (pyink rms_estimate)
    mask   = pixel >= min_snr * noise                                 (step 2, SNR 2 in Sec. 8)
    mask   = connected island containing (or nearest to) the centre   (step 3, optional)
    value  = log10 / asinh stretch of the masked pixels (optional)    (step 4 transfer)
    value  = (value - min) / (max - min) over the mask (or per island), 0 elsewhere
    image *= channel weight                                           (step 5)

Images that cannot be used are reported with a reason instead of raising:
``nan_pixels`` (non-finite input), ``blank_image`` (constant input), ``no_signal`` (no
pixel above the SNR threshold / no island left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.stats import mad_std, sigma_clip
from scipy import ndimage


@dataclass
class PreprocessSettings:
    """Preprocessing options (paper 004 Sec. 3.1; the schema's presets follow the Sec. 8.1
    recipe).

    Attributes
    ----------
    min_snr : float or None
        Keep pixels ``>= min_snr * rms`` (None: keep all). Sec. 8.1 uses 2.
    clip_rounds : int
        Sigma-clipping iterations of the rms estimate.
    clip_sigma : float
        Clipping threshold [sigma].
    stretch : {"log", "asinh", None}
        Transfer function before the min-max scaling (Sec. 8.1 uses log).
    asinh_scale : float
        ``asinh(x / (asinh_scale * rms))`` for the asinh stretch [rms units].
    islands : {"central", "all"}
        Keep only the island containing/nearest the centre pixel, or every island.
    per_island : bool
        Min-max scale each kept island on its own (Sec. 3.1).
    min_island_pixels : int
        Islands smaller than this are dropped [pixels].
    channel_weights : list of float or None
        Multiply each channel after scaling (Sec. 3.1 step 5); None = 1 for every channel.
    """

    min_snr: float | None
    clip_rounds: int
    clip_sigma: float
    stretch: str | None
    asinh_scale: float
    islands: str
    per_island: bool
    min_island_pixels: int
    channel_weights: list | None

    @classmethod
    def from_preset(cls, name: str | None = None, **overrides) -> PreprocessSettings:
        """The ``preprocess`` mapping of a schema preset of ``som`` with ``overrides``."""
        from ..config import schema_preset

        return cls(**{**schema_preset("som", name)["preprocess"], **overrides})


def rms_estimate(data, clip_rounds: int = 2, clip_sigma: float = 3.0) -> float:
    """Background rms of an image from sigma-clipped MAD (astropy).

    Parameters
    ----------
    data : array_like
        Pixels (zeros and non-finite values are ignored, as pyink's ``rms_estimate`` on
        ``data[data != 0]``).
    clip_rounds, clip_sigma : int, float
        Iterations and threshold [sigma] of the clipping.

    Returns
    -------
    float
        rms in the data's units (0 when nothing is left).
    """
    a = np.asarray(data, dtype=np.float64).ravel()
    a = a[np.isfinite(a) & (a != 0)]
    if a.size < 2:
        return 0.0
    clipped = sigma_clip(a, sigma=clip_sigma, maxiters=clip_rounds, stdfunc="mad_std")
    kept = np.asarray(clipped.compressed())
    return float(mad_std(kept)) if kept.size > 1 else 0.0


def minmax(values) -> np.ndarray:
    """Scale to [0, 1]; a constant array maps to ones."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = np.min(v), np.max(v)
    return np.ones_like(v) if hi <= lo else (v - lo) / (hi - lo)


def central_island(mask: np.ndarray, min_pixels: int = 1) -> np.ndarray:
    """Connected component (8-connectivity) containing the centre pixel, else the nearest one.

    Parameters
    ----------
    mask : ndarray of bool, (H, W)
    min_pixels : int
        Components smaller than this are ignored [pixels].

    Returns
    -------
    ndarray of bool, (H, W); all False when nothing qualifies.
    """
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    ok = sizes >= min_pixels
    ok[0] = False
    cy, cx = (mask.shape[0] - 1) / 2.0, (mask.shape[1] - 1) / 2.0
    yy, xx = np.nonzero(ok[lab])
    if yy.size == 0:
        return np.zeros_like(mask, dtype=bool)
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    best = lab[yy[np.argmin(d2)], xx[np.argmin(d2)]]
    return lab == best


def _channel(img: np.ndarray, st: PreprocessSettings) -> tuple[np.ndarray, str | None]:
    noise = rms_estimate(img, st.clip_rounds, st.clip_sigma)
    if st.min_snr is None:
        mask = np.ones(img.shape, bool)
    else:
        thr = st.min_snr * noise
        mask = img > thr if thr <= 0 else img >= thr
    if st.islands == "central":
        mask = central_island(mask, st.min_island_pixels)
    elif st.min_island_pixels > 1:
        lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        keep = sizes >= st.min_island_pixels
        keep[0] = False
        mask = keep[lab]
    if not mask.any():
        return np.zeros(img.shape, np.float32), "no_signal"
    v = img.astype(np.float64)
    if st.stretch == "log":
        floor = noise if noise > 0 else np.min(v[mask & (v > 0)], initial=np.inf)
        v = np.log10(np.maximum(v, floor if np.isfinite(floor) else 1e-30))
    elif st.stretch == "asinh":
        scale = st.asinh_scale * (noise if noise > 0 else max(np.max(np.abs(v)), 1e-30))
        v = np.arcsinh(v / scale)
    elif st.stretch not in (None, "none", "linear"):
        raise ValueError(f"unknown stretch {st.stretch!r}")
    out = np.zeros(img.shape, np.float64)
    if st.per_island:
        lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        for i in range(1, n + 1):
            m = lab == i
            out[m] = minmax(v[m])
    else:
        out[mask] = minmax(v[mask])
    return out.astype(np.float32), None


def preprocess_image(image, settings: PreprocessSettings):
    """Preprocess one cutout (paper 004 Sec. 3.1).

    Parameters
    ----------
    image : array_like, (H, W) or (C, H, W)
        Raw cutout pixels (any flux unit; only ratios to the rms matter).
    settings : PreprocessSettings
        From a ``som.presets`` entry (:meth:`PreprocessSettings.from_preset`).

    Returns
    -------
    out : ndarray, (C, H, W) float32 in [0, weight_c]
    reason : str or None
        None when usable, else 'nan_pixels', 'blank_image' or 'no_signal'.
    """
    st = settings
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    out = np.zeros(a.shape, np.float32)
    if not np.isfinite(a).all():
        return out, "nan_pixels"
    if np.all(a == a.reshape(a.shape[0], -1)[:, :1, None]):
        return out, "blank_image"
    weights = st.channel_weights or [1.0] * a.shape[0]
    if len(weights) != a.shape[0]:
        raise ValueError("channel_weights must have one weight per channel")
    reason = None
    for c in range(a.shape[0]):
        out[c], r = _channel(a[c], st)
        out[c] *= np.float32(weights[c])
        reason = reason or r
    return out, reason


def preprocess_images(images, settings: PreprocessSettings | dict):
    """Preprocess a stack of cutouts.

    Parameters
    ----------
    images : array_like, (N, H, W) or (N, C, H, W)
    settings : PreprocessSettings or dict
        A dict must hold every field (a ``som.presets`` entry's ``preprocess``).

    Returns
    -------
    out : ndarray, (N, C, H, W) float32
    reasons : ndarray of object, (N,), None for usable images
    """
    st = (
        settings
        if isinstance(settings, PreprocessSettings)
        else PreprocessSettings(**settings)
    )
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[:, None]
    out = np.zeros(a.shape, np.float32)
    reasons = np.full(a.shape[0], None, dtype=object)
    for i in range(a.shape[0]):
        out[i], reasons[i] = preprocess_image(a[i], st)
    return out, reasons


def channel_weights(images, reference: int = 0) -> np.ndarray:
    """Weights that equalise the mean summed brightness of each channel (Sec. 3.1 step 5).

    Parameters
    ----------
    images : array_like, (N, C, H, W)
        Preprocessed (unweighted) images.
    reference : int
        Channel whose weight is 1.

    Returns
    -------
    ndarray, (C,) float64: ``mean_sum[reference] / mean_sum[c]`` (1 where a channel is empty).
    """
    a = np.asarray(images, dtype=np.float64)
    sums = np.nanmean(a.reshape(a.shape[0], a.shape[1], -1).sum(axis=2), axis=0)
    w = np.ones(a.shape[1])
    nz = sums > 0
    w[nz] = sums[reference] / sums[nz]
    return w
