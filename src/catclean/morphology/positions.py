"""Which catalog sources fall on a host mask (numpy only: the per-partition
``morphology_columns`` rule runs without TensorFlow)."""

from __future__ import annotations

import numpy as np


def in_host_mask(positions, mask) -> np.ndarray:
    """Whether sources fall on a host mask.

    Parameters
    ----------
    positions : array (N, 2)
        Source (x, y) in 0-indexed pixel coordinates of the host image (pixel centres at
        integers, as sep / numpy).
    mask : array (H, W) bool
        Host mask from :func:`segment_hosts`.

    Returns
    -------
    ndarray (N,) bool
        False for positions outside the image or not finite.
    """
    pos = np.asarray(positions, np.float64).reshape(-1, 2)
    m = np.asarray(mask, bool)
    out = np.zeros(len(pos), bool)
    ok = np.all(np.isfinite(pos), axis=1)
    ix = np.full(len(pos), -1)
    iy = np.full(len(pos), -1)
    ix[ok] = np.floor(pos[ok, 0] + 0.5).astype(int)
    iy[ok] = np.floor(pos[ok, 1] + 0.5).astype(int)
    inside = ok & (ix >= 0) & (iy >= 0) & (ix < m.shape[1]) & (iy < m.shape[0])
    out[inside] = m[iy[inside], ix[inside]]
    return out
