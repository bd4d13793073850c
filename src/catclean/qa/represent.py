"""Representative images (Input-1) and per-cluster counts (Input-2), paper 000 Sec. 3.1.

For every CCD, one source is drawn at random (seeded) from each of the ``n_clusters`` SOM
clusters and a ``stamp`` x ``stamp`` pixel cut-out (25x25 in the paper) centred on it is
taken from the original pixels; a cluster with no source gives a blank stamp. The counts
of sources per cluster are Input-2.

Stamp pixels are scaled as asinh((pixel - CCD global background) / (3 x CCD rms)): the
global background (a scalar) is removed, so gradients, fringes and bands survive as
offsets in the stamps; pixels outside the CCD are set to the global background (0).
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(expid) -> int:
    return zlib.crc32(str(expid).encode())


def representative_ccd(data: np.ndarray, x: np.ndarray, y: np.ndarray, clusters: np.ndarray,
                       globalback: float, globalrms: float, n_clusters: int,
                       stamp: int, rng: np.random.Generator | None = None):
    """Input-1 and Input-2 of one CCD.

    Parameters
    ----------
    data : (ny, nx) CCD pixels in ADU (NaN allowed).
    x, y : source centroids in pixels (0-based).
    clusters : SOM cluster of each source.
    globalback, globalrms : CCD background level and rms (ADU).

    Returns
    -------
    stamps : (n_clusters, stamp, stamp) float32
    counts : (n_clusters,) int32
    chosen : (n_clusters,) int, index of the chosen source (-1 for empty clusters)
    """
    rng = rng or np.random.default_rng(0)
    counts = np.bincount(clusters, minlength=n_clusters)[:n_clusters].astype(np.int32)
    stamps = np.zeros((n_clusters, stamp, stamp), np.float32)
    chosen = np.full(n_clusters, -1, np.int64)
    if len(x) == 0:
        return stamps, counts, chosen
    order = np.argsort(clusters, kind="stable")
    starts = np.searchsorted(clusters[order], np.arange(n_clusters + 1))
    ny, nx = data.shape
    h = stamp // 2
    rms = globalrms if np.isfinite(globalrms) and globalrms > 0 else 1.0
    back = globalback if np.isfinite(globalback) else 0.0
    for c in range(n_clusters):
        a, b = starts[c], starts[c + 1]
        if b <= a:
            continue
        i = int(order[a + rng.integers(b - a)])
        chosen[c] = i
        cx, cy = int(np.rint(x[i])), int(np.rint(y[i]))
        cut = np.full((stamp, stamp), back, np.float32)
        x0, y0 = cx - h, cy - h
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + stamp, nx), min(y0 + stamp, ny)
        if xa < xb and ya < yb:
            cut[ya - y0:yb - y0, xa - x0:xb - x0] = data[ya:yb, xa:xb]
        cut = np.where(np.isfinite(cut), cut, back)
        stamps[c] = np.arcsinh((cut - back) / (3.0 * rms))
    return stamps, counts, chosen


def exposure_key(expid, ccd: int, seed: int) -> np.random.Generator:
    """The generator that picks the representative sources of one CCD."""
    return np.random.default_rng([int(seed), 11, _key(expid), int(ccd)])


def input2(counts: np.ndarray) -> np.ndarray:
    """Input-2 encoding of (n, n_clusters) counts: log10(1 + N) and the fraction N / sum N,
    concatenated (n, 2 n_clusters) float32."""
    counts = np.asarray(counts, np.float32)
    tot = counts.sum(1, keepdims=True)
    frac = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
    return np.concatenate([np.log10(1.0 + counts), frac], axis=1).astype(np.float32)
