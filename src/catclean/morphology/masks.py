"""Automatic annotation of the central object by Otsu thresholding (paper 003, Sec. 2.3).

The paper builds its training masks with scikit-image: an Otsu threshold separates
object and background grey levels and the object at the image centre is kept
(``imantics`` then turns it into polygons, which a boolean mask makes unnecessary here).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import gaussian, threshold_otsu


def otsu_mask(image: np.ndarray, smooth_sigma: float = 1.0,
              max_centre_distance: float | None = None) -> np.ndarray:
    """Boolean mask of the object at the centre of an RGB (or grey) image.

    Parameters
    ----------
    image : ndarray (H, W, 3) or (H, W)
        JPEG values (0..255) or any float image.
    smooth_sigma : float
        Gaussian smoothing (pixels) before thresholding, to keep JPEG blocks and sky noise
        from fragmenting the mask; 0 disables it.
    max_centre_distance : float, optional
        If no above-threshold component covers the central pixel, the component nearest
        to the centre is taken when it is closer than this (pixels; default H / 8).

    Returns
    -------
    ndarray (H, W) bool
        Holes filled; all False when the image is flat or nothing is near the centre.
    """
    img = np.asarray(image, dtype=np.float64)
    grey = img.mean(axis=-1) if img.ndim == 3 else img
    if not np.all(np.isfinite(grey)) or np.ptp(grey) == 0:
        return np.zeros(grey.shape, bool)
    if smooth_sigma > 0:
        grey = gaussian(grey, sigma=smooth_sigma, preserve_range=True)
    binary = grey > threshold_otsu(grey)
    lab, n = ndimage.label(binary)
    if n == 0:
        return np.zeros(grey.shape, bool)
    h, w = grey.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    centre_labels = np.unique(lab[int(np.floor(cy)):int(np.ceil(cy)) + 1,
                                  int(np.floor(cx)):int(np.ceil(cx)) + 1])
    centre_labels = centre_labels[centre_labels > 0]
    if centre_labels.size:
        keep = centre_labels[0]
    else:
        yy, xx = np.indices(grey.shape)
        r = np.hypot(yy - cy, xx - cx)
        best, keep = np.inf, 0
        for i in range(1, n + 1):
            d = r[lab == i].min()
            if d < best:
                best, keep = d, i
        limit = h / 8.0 if max_centre_distance is None else max_centre_distance
        if best > limit:
            return np.zeros(grey.shape, bool)
    return ndimage.binary_fill_holes(lab == keep)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (nan when both are empty)."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    if union == 0:
        return float("nan")
    return float(np.logical_and(a, b).sum() / union)
