"""Benchmark: seconds per batch-SOM iteration on 3,000,000 x 5 features, 15 x 15 units:
catclean's fused pass against the previous implementation and against MiniSom.

One iteration = one full pass over the data (BMU search for every row + batch update),
as in SOMPY, which paper 000 used (~13 s per iteration on a 2.8 GHz Core i7).

Baseline, in the same run: the previous ``BatchSOM.step`` (kept here only): float32 GEMM
on [x, 1] per chunk of 8192 rows materialising the chunk x units distances, argmin,
gathers for the quantisation error, then single-threaded bincounts. Both start from the
same codebook and train ``--iters`` iterations; the script prints seconds per iteration
(median; wall and process CPU time, the machine is shared), the quantisation errors of
both (relative difference), the BMU agreement and the largest codebook difference.
MiniSom has no batch mode: it updates the map once per sample, so a full pass over 3M rows
takes very long; it is timed on a random subsample and scaled per sample (stated in the
output). Both run on the same data in this process, limited to 2 threads.

Run:  .venv/bin/python benchmarks/bench_qa_som.py [--rows 3000000] [--threads 2] [--iters 5]
"""

import argparse
import os
import time

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=3_000_000)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--iters", type=int, default=5)
ap.add_argument("--minisom-rows", type=int, default=30_000)
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > args.threads:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])

import numpy as np  # noqa: E402

from catclean.qa.som import BatchSOM  # noqa: E402


def features(n, seed=0):
    """Five QA-like features: log ISO0, ellipticity, background, stellarity, exptime."""
    rng = np.random.default_rng(seed)
    star = rng.uniform(size=n) < 0.4
    iso = np.where(star, rng.normal(1.3, 0.3, n), rng.normal(1.7, 0.4, n))
    ell = np.clip(np.where(star, rng.rayleigh(0.05, n), rng.rayleigh(0.25, n)), 0, 0.95)
    bkg = rng.standard_t(4, n) * 0.5
    stel = np.clip(np.where(star, rng.beta(8, 1, n), rng.beta(1, 5, n)), 0, 1)
    exp = np.where(rng.uniform(size=n) < 0.15, rng.uniform(0.03, 1, n), 1.0)
    return np.column_stack([iso, ell, bkg, stel, exp]).astype(np.float32)




def old_step(weights, grid_d2, xa, sigma, chunk=8192, n_threads=2):
    """The previous ``BatchSOM.step`` (GEMM per chunk + argmin + gathers + bincounts), on
    augmented rows ``xa = [z, 1]``; updates ``weights`` in place, returns the mean QE."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    w = weights
    n_units, d_feat = w.shape
    wa = np.vstack([(-2.0 * w).T, (w * w).sum(1)[None, :]]).astype(np.float32)
    idx = np.empty(len(xa), np.int32)
    dist = np.empty(len(xa), np.float32)

    def work(s):
        xc = xa[s:s + chunk]
        d = xc @ wa
        i = d.argmin(1)
        idx[s:s + len(xc)] = i
        xf = xc[:, :d_feat]
        dmin = d[np.arange(len(xc)), i] + np.einsum("ij,ij->i", xf, xf)
        dist[s:s + len(xc)] = np.sqrt(np.maximum(dmin, 0))

    with threadpool_limits(1), ThreadPoolExecutor(n_threads) as ex:
        list(ex.map(work, range(0, len(xa), chunk)))
    x = xa[:, :-1]
    n = np.bincount(idx, minlength=n_units).astype(np.float64)
    s = np.empty((n_units, d_feat), np.float64)
    for j in range(d_feat):
        s[:, j] = np.bincount(idx, weights=x[:, j], minlength=n_units)
    h = np.exp(-grid_d2.astype(np.float64) / (2.0 * sigma * sigma))
    num, den = h @ s, h @ n
    ok = den > 1e-12
    w[ok] = (num[ok] / den[ok, None]).astype(np.float32)
    return float(dist.mean())


def timed(fn, *a, **kw):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0, time.process_time() - c0


x = features(args.rows)
print(f"data: {x.shape[0]:,} x {x.shape[1]} float32; threads={args.threads}; "
      f"cpus={os.cpu_count()} (affinity {len(os.sched_getaffinity(0))}); "
      f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
som = BatchSOM.from_preset("paper", seed=0, n_threads=args.threads, n_iter=args.iters)
som.mean, som.std = x.mean(0), x.std(0)
z = som.transform(x)
w0 = som._init_weights(z)
som.weights = w0.copy()
_, t_jit, _ = timed(som.bmu, z[:1000])  # numba kernel: compile or load from cache
za = np.hstack([z, np.ones((len(z), 1), np.float32)])
w_old = w0.copy()
# one BMU search from the same codebook: where the two searches disagree, how close are
# the two units' exact (float64) distances, and which one is nearer?
wa0 = np.vstack([(-2.0 * w0).T, (w0 * w0).sum(1)[None, :]]).astype(np.float32)
idx_old = np.concatenate([(za[s:s + 65536] @ wa0).argmin(1) for s in range(0, len(za), 65536)])
idx_new = som.bmu(z)
diff = np.flatnonzero(idx_old != idx_new)
if len(diff):
    zd, w64 = z[diff].astype(np.float64), w0.astype(np.float64)
    d_old = np.sqrt(((zd - w64[idx_old[diff]]) ** 2).sum(1))
    d_new = np.sqrt(((zd - w64[idx_new[diff]]) ** 2).sum(1))
    gap = np.abs(d_old - d_new) / np.maximum(d_old, 1e-30)
    print(f"one BMU search from the same codebook: {len(diff)} of {len(z):,} rows differ "
          f"(float32 near-ties: largest relative gap in exact distance {gap.max():.1e}; "
          f"the fused pass picks the nearer unit in {np.mean(d_new <= d_old):.0%} of them)")
else:
    print(f"one BMU search from the same codebook: all {len(z):,} BMUs identical")
new_t, new_c, old_t, old_c, qe_new, qe_old = [], [], [], [], [], []
for it in range(args.iters):
    sig = som.sigma_at(it)
    q, t, c = timed(old_step, w_old, som._grid_d2, za, sig, n_threads=args.threads)
    qe_old.append(q), old_t.append(t), old_c.append(c)
    q, t, c = timed(som.step, z, sig)
    qe_new.append(q), new_t.append(t), new_c.append(c)
ours, before = float(np.median(new_t)), float(np.median(old_t))
print(f"kernel compile/cache load (once per process): {t_jit:.2f} s")
print(f"previous BatchSOM.step: {before:.3f} s per iteration (median of {args.iters}; "
      f"CPU {np.median(old_c):.3f} s; all: {', '.join(f'{t:.2f}' for t in old_t)})")
print(f"catclean BatchSOM 15x15 (fused): {ours:.3f} s per iteration (median of {args.iters}; "
      f"CPU {np.median(new_c):.3f} s; all: {', '.join(f'{t:.2f}' for t in new_t)})")
rel = max(abs(a - b) / b for a, b in zip(qe_new, qe_old))
print(f"quantisation error per iteration, fused: {', '.join(f'{q:.6f}' for q in qe_new)}")
print(f"quantisation error per iteration, prev.: {', '.join(f'{q:.6f}' for q in qe_old)}")
ref = som.bmu(z)
som_w = som.weights
som.weights = w_old
agree = float((som.bmu(z) == ref).mean())
som.weights = som_w
print(f"after {args.iters} iterations from the same codebook: max |dW| "
      f"{np.abs(som.weights - w_old).max():.2e} (features are z-scores), BMU agreement "
      f"{agree:.6f}, max relative QE difference {rel:.1e}")
print(f"RATIO previous / fused per iteration: {before / ours:.2f}x wall, "
      f"{np.median(old_c) / np.median(new_c):.2f}x CPU (target <= 0.08 s per iteration on "
      f"2 idle cores)")

from minisom import MiniSom  # noqa: E402

rng = np.random.default_rng(1)
sub = z[rng.choice(len(z), args.minisom_rows, replace=False)]
ms = MiniSom(15, 15, 5, sigma=3.0, learning_rate=0.5, neighborhood_function="gaussian",
             random_seed=0)
ms.random_weights_init(sub)
t0 = time.perf_counter()
ms.train(sub, args.minisom_rows, random_order=False, verbose=False)
t_ms = time.perf_counter() - t0
per_sample = t_ms / args.minisom_rows
ms_epoch = per_sample * len(z)
print(f"MiniSom 15x15 (online, one update per sample): {t_ms:.2f} s for {args.minisom_rows:,} "
      f"samples = {per_sample * 1e6:.1f} us/sample -> {ms_epoch:.1f} s per full pass over "
      f"{len(z):,} rows (scaled per sample from the subsample)")
print(f"RATIO MiniSom / catclean per iteration: {ms_epoch / ours:.1f}x "
      f"(targets: <= 2 s per iteration, >= 10x)")
