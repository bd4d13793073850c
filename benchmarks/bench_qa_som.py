"""Benchmark: seconds per batch-SOM iteration on 3,000,000 x 5 features vs MiniSom.

One iteration = one full pass over the data (BMU search for every row + batch update),
as in SOMPY, which paper 000 used (~13 s per iteration on a 2.8 GHz Core i7).
MiniSom has no batch mode: it updates the map once per sample, so a full pass over 3M rows
takes very long; it is timed on a random subsample and scaled per sample (stated in the
output). Both run on the same data in this process, limited to 2 threads.

Run:  .venv/bin/python benchmarks/bench_qa_som.py [--rows 3000000] [--threads 2]
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


x = features(args.rows)
print(f"data: {x.shape[0]:,} x {x.shape[1]} float32; threads={args.threads}; "
      f"cpus={os.cpu_count()} (affinity {len(os.sched_getaffinity(0))})")
som = BatchSOM(15, 15, sigma0=3.0, sigma_end=0.7, n_iter=args.iters, seed=0,
               n_threads=args.threads)
z = None
t0 = time.perf_counter()
som.mean, som.std = x.mean(0), x.std(0)
z = som.transform(x)
som.weights = som._init_weights(z)
za = som.augment(z)
t_init = time.perf_counter() - t0
times = []
for it in range(args.iters):
    t0 = time.perf_counter()
    som.step(za, som.sigma_at(it))
    times.append(time.perf_counter() - t0)
ours = float(np.median(times))
print(f"catclean BatchSOM 15x15: {ours:.3f} s per iteration (median of {args.iters}; "
      f"all: {', '.join(f'{t:.2f}' for t in times)}); init+standardise {t_init:.2f} s")

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
