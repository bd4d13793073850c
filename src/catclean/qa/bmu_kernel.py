"""Fused best-matching-unit search and batch-SOM accumulation (one pass, numba).

One pass over the rows does, for each row ``x``::

    b(x)  = argmin_u ||w_u||^2 - 2 x.w_u          (float32, first minimum on ties)
    S_b  += x ;  N_b += 1                          (float64)
    q    += ||x - w_b||                            (float64, exact for the chosen unit)

without ever holding the rows x units distance matrix: rows are taken ``TILE`` at a time,
transposed into a small (features x TILE) tile, and the units are scanned four at a time
against the whole tile, keeping the running minimum and its index per row in registers
(the loop over the tile's rows vectorises). Five features (the paper's SOM) run unpadded;
other counts are padded with zeros to a multiple of 8, units to a multiple of 4 with ``+inf`` norms (never chosen).

Rows are cut into fixed blocks of ``block`` rows. Every block writes its own partial
sums, which are added in block order afterwards, so the result does not depend on the
number of threads; ``n_threads`` Python threads each run the kernel on a contiguous run
of blocks (the kernel releases the GIL).

The BMU search uses the same float32 expansion as a GEMM-based search, so it picks the
same units except on float32 near-ties; the quantisation distance is recomputed in
float64 as ``||x - w_b||`` (no cancellation).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np


def _prefer_512_bit_vectors() -> None:
    """Let LLVM use the full 512-bit registers on AVX-512 CPUs.

    LLVM's x86 targets prefer 256-bit vectors by default (``prefer-256-bit``), which
    leaves half of each AVX-512 unit idle in the kernel's row loop; without that
    preference the pass is 10-15% faster (``benchmarks/bench_qa_som.py``). Only set when
    the user has not chosen features (``NUMBA_CPU_FEATURES``) and before numba has built
    its code generator; otherwise nothing changes.
    """
    import llvmlite.binding as llvm

    if nb.config.CPU_FEATURES is not None:
        return
    features = llvm.get_host_cpu_features()
    if features.get("avx512f"):
        nb.config.CPU_FEATURES = features.flatten() + ",-prefer-256-bit"


_prefer_512_bit_vectors()

#: rows per register tile of the kernel
TILE = 128
#: features are padded to a multiple of this
FEATURE_PAD = 8
#: units are scanned this many at a time
UNIT_GROUP = 4


@nb.njit(inline="always")
def _keep_min(d, u, best, j):  # pragma: no cover - compiled
    """The running minimum and its unit after seeing distance ``d`` of unit ``u`` (the
    first unit wins ties); branch-free selects, so the row loop vectorises."""
    c = d < best
    return (d if c else best), (u if c else j)


@nb.njit(nogil=True, boundscheck=False, fastmath={"contract"}, cache=True)
def _kernel(x, wt, wn, wd, b0, b1, block, idx, dist, s, n, q):  # pragma: no cover - compiled
    """Blocks ``b0 <= blk < b1`` of ``x``: BMU index into ``idx``, distance into ``dist``,
    per-block sums into ``s[blk]`` / ``n[blk]`` (each skipped when its array is empty) and
    the block's distance sum into ``q[blk]``. ``wt`` (dp, up): -2 W^T padded; ``wn`` (up,):
    ||w||^2 padded with +inf; ``wd`` (units, d): W in float64."""
    nrow, d = x.shape
    dp, up = wt.shape
    want_idx = idx.shape[0] > 0
    want_dist = dist.shape[0] > 0
    want_sum = s.shape[0] > 0
    best = np.empty(TILE, np.float32)
    bi = np.empty(TILE, np.int32)
    xt = np.zeros((dp, TILE), np.float32)
    acc = np.empty((4, TILE), np.float32)
    for blk in range(b0, b1):
        start = blk * block
        stop = min(start + block, nrow)
        qsum = 0.0
        for r0 in range(start, stop, TILE):
            m = min(TILE, stop - r0)
            for k in range(d):
                for r in range(m):
                    xt[k, r] = x[r0 + r, k]
                for r in range(m, TILE):
                    xt[k, r] = 0.0
            for r in range(TILE):
                best[r] = np.inf
                bi[r] = 0
            if dp == 5:  # the paper's five features: no padding FMAs
                for u in range(0, up, 4):
                    n0 = wn[u]
                    n1 = wn[u + 1]
                    n2 = wn[u + 2]
                    n3 = wn[u + 3]
                    p00, p01, p02, p03, p04 = wt[0, u], wt[1, u], wt[2, u], wt[3, u], wt[4, u]
                    p10, p11, p12, p13, p14 = (wt[0, u + 1], wt[1, u + 1], wt[2, u + 1],
                                               wt[3, u + 1], wt[4, u + 1])
                    p20, p21, p22, p23, p24 = (wt[0, u + 2], wt[1, u + 2], wt[2, u + 2],
                                               wt[3, u + 2], wt[4, u + 2])
                    p30, p31, p32, p33, p34 = (wt[0, u + 3], wt[1, u + 3], wt[2, u + 3],
                                               wt[3, u + 3], wt[4, u + 3])
                    for r in range(TILE):
                        x0, x1, x2, x3, x4 = xt[0, r], xt[1, r], xt[2, r], xt[3, r], xt[4, r]
                        d0 = n0 + x0 * p00 + x1 * p01 + x2 * p02 + x3 * p03 + x4 * p04
                        d1 = n1 + x0 * p10 + x1 * p11 + x2 * p12 + x3 * p13 + x4 * p14
                        d2 = n2 + x0 * p20 + x1 * p21 + x2 * p22 + x3 * p23 + x4 * p24
                        d3 = n3 + x0 * p30 + x1 * p31 + x2 * p32 + x3 * p33 + x4 * p34
                        bb, j = _keep_min(d0, u, best[r], bi[r])
                        bb, j = _keep_min(d1, u + 1, bb, j)
                        bb, j = _keep_min(d2, u + 2, bb, j)
                        best[r], bi[r] = _keep_min(d3, u + 3, bb, j)
            elif dp == 8:
                for u in range(0, up, 4):
                    n0 = wn[u]
                    n1 = wn[u + 1]
                    n2 = wn[u + 2]
                    n3 = wn[u + 3]
                    p00, p01, p02, p03 = wt[0, u], wt[1, u], wt[2, u], wt[3, u]
                    p04, p05, p06, p07 = wt[4, u], wt[5, u], wt[6, u], wt[7, u]
                    p10, p11, p12, p13 = wt[0, u + 1], wt[1, u + 1], wt[2, u + 1], wt[3, u + 1]
                    p14, p15, p16, p17 = wt[4, u + 1], wt[5, u + 1], wt[6, u + 1], wt[7, u + 1]
                    p20, p21, p22, p23 = wt[0, u + 2], wt[1, u + 2], wt[2, u + 2], wt[3, u + 2]
                    p24, p25, p26, p27 = wt[4, u + 2], wt[5, u + 2], wt[6, u + 2], wt[7, u + 2]
                    p30, p31, p32, p33 = wt[0, u + 3], wt[1, u + 3], wt[2, u + 3], wt[3, u + 3]
                    p34, p35, p36, p37 = wt[4, u + 3], wt[5, u + 3], wt[6, u + 3], wt[7, u + 3]
                    for r in range(TILE):
                        x0, x1, x2, x3 = xt[0, r], xt[1, r], xt[2, r], xt[3, r]
                        x4, x5, x6, x7 = xt[4, r], xt[5, r], xt[6, r], xt[7, r]
                        d0 = (n0 + x0 * p00 + x1 * p01 + x2 * p02 + x3 * p03
                              + x4 * p04 + x5 * p05 + x6 * p06 + x7 * p07)
                        d1 = (n1 + x0 * p10 + x1 * p11 + x2 * p12 + x3 * p13
                              + x4 * p14 + x5 * p15 + x6 * p16 + x7 * p17)
                        d2 = (n2 + x0 * p20 + x1 * p21 + x2 * p22 + x3 * p23
                              + x4 * p24 + x5 * p25 + x6 * p26 + x7 * p27)
                        d3 = (n3 + x0 * p30 + x1 * p31 + x2 * p32 + x3 * p33
                              + x4 * p34 + x5 * p35 + x6 * p36 + x7 * p37)
                        bb, j = _keep_min(d0, u, best[r], bi[r])
                        bb, j = _keep_min(d1, u + 1, bb, j)
                        bb, j = _keep_min(d2, u + 2, bb, j)
                        best[r], bi[r] = _keep_min(d3, u + 3, bb, j)
            else:  # more than 8 features: the same scan, accumulated 8 features at a time
                for u in range(0, up, 4):
                    for g in range(4):
                        ng = wn[u + g]
                        for r in range(TILE):
                            acc[g, r] = ng
                    for k in range(dp):
                        for g in range(4):
                            wk = wt[k, u + g]
                            for r in range(TILE):
                                acc[g, r] += xt[k, r] * wk
                    for r in range(TILE):
                        bb = best[r]
                        j = bi[r]
                        for g in range(4):
                            c = acc[g, r] < bb
                            bb = acc[g, r] if c else bb
                            j = u + g if c else j
                        best[r] = bb
                        bi[r] = j
            for r in range(m):
                b = bi[r]
                i = r0 + r
                if want_idx:
                    idx[i] = b
                dd = 0.0
                for k in range(d):
                    v = np.float64(x[i, k])
                    t = v - wd[b, k]
                    dd += t * t
                    if want_sum:
                        s[blk, b, k] += v
                dd = np.sqrt(dd)
                if want_dist:
                    dist[i] = dd
                qsum += dd
                if want_sum:
                    n[blk, b] += 1.0
        q[blk] = qsum


def _padded_codebook(weights: np.ndarray):
    """(-2 W^T, ||w||^2, W) padded for the kernel: features to a multiple of 8 (zeros),
    units to a multiple of 4 (``+inf`` norms)."""
    w = np.asarray(weights, np.float32)
    u, d = w.shape
    # five features (paper 000's SOM) have an unpadded path; otherwise pad to 8s
    dp = 5 if d == 5 else max(FEATURE_PAD, -(-d // FEATURE_PAD) * FEATURE_PAD)
    up = -(-u // UNIT_GROUP) * UNIT_GROUP
    wt = np.zeros((dp, up), np.float32)
    wt[:d, :u] = (np.float32(-2.0) * w).T
    wn = np.full(up, np.inf, np.float32)
    wn[:u] = (w * w).sum(1)
    return wt, wn, w.astype(np.float64)


def bmu_pass(x: np.ndarray, weights: np.ndarray, block: int = 65536, n_threads: int = 1,
             want_idx: bool = True, want_dist: bool = False, accumulate: bool = False):
    """Best-matching units of ``x`` and, optionally, the batch-SOM sums, in one pass.

    Parameters
    ----------
    x : (n, d) array
        Rows (standardised features; converted to C-contiguous float32).
    weights : (units, d) array
        Codebook.
    block : int
        Rows per block: the unit of work of a thread and of the partial sums.
    n_threads : int
        Python threads running the kernel on contiguous runs of blocks.
    want_idx, want_dist, accumulate : bool
        Return the BMU index / the BMU distance of every row / the per-unit sums.

    Returns
    -------
    dict with ``idx`` ((n,) int32), ``dist`` ((n,) float64, ``||x - w_b||``), ``sums``
    ((units, d) float64, sum of the rows per BMU), ``counts`` ((units,) float64) when
    requested, and always ``dist_sum`` (float, sum of ``||x - w_b||``).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_rows = len(x)
    u, d = np.shape(weights)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"rows have {x.shape[-1]} features, the codebook {d}")
    wt, wn, wd = _padded_codebook(weights)
    block = max(TILE, int(block))
    n_blocks = -(-n_rows // block)
    idx = np.empty(n_rows if want_idx else 0, np.int32)
    dist = np.empty(n_rows if want_dist else 0, np.float64)
    s = np.zeros((n_blocks, u, d) if accumulate else (0, 0, 0), np.float64)
    cnt = np.zeros((n_blocks, u) if accumulate else (0, 0), np.float64)
    q = np.zeros(n_blocks, np.float64)

    def run(lo_hi):
        _kernel(x, wt, wn, wd, lo_hi[0], lo_hi[1], block, idx, dist, s, cnt, q)

    n_threads = max(1, min(int(n_threads), n_blocks))
    cuts = np.linspace(0, n_blocks, n_threads + 1).round().astype(int)
    runs = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    if len(runs) <= 1:
        for r in runs:
            run(r)
    else:
        with ThreadPoolExecutor(len(runs)) as ex:
            list(ex.map(run, runs))
    out = {"dist_sum": float(q.sum())}
    if want_idx:
        out["idx"] = idx
    if want_dist:
        out["dist"] = dist
    if accumulate:
        out["sums"] = s.sum(0)
        out["counts"] = cnt.sum(0)
    return out
