"""Benchmark: rotation/flip-invariant SOM training and mapping throughput (paper 004, PINK).

4000 synthetic 64x64 images (seeded numpy ellipses and double-lobed sources), a 10x10
cartesian SOM, one epoch (unitygaussian sigma 1.1, damping 0.2, random init), flips on,
PINK default neuron (91x91) and distance (45x45) sizes, numrot 4, 92 and 360. Prints
images/s for training and for mapping and the quantization error (mean distance to the
best-matching neuron).

Comparison:
* if ``PINK_BIN`` names a PINK binary, PINK is run on the same image file with the same
  settings (``--cuda-off``) and its images/s, the ratio, and the agreement of the BMUs
  (our mapper on PINK's SOM file vs PINK's mapping file) are printed;
* otherwise the ratio to a direct reference is printed: PINK's CPU algorithm structure in
  numpy (every transform materialised, then a loop over neurons computing the distance to
  all transforms, no GEMM), timed on ``--ref-images`` images and extrapolated per image;
  with ``--loop-ref`` also the plain-Python-loop reference of tests/test_som.py (numrot 4
  only, one image).

Run:  .venv/bin/python benchmarks/bench_som_rotations.py [--images 4000] [--threads 2]
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--images", type=int, default=4000)
ap.add_argument("--size", type=int, default=64)
ap.add_argument("--rows", type=int, default=10)
ap.add_argument("--cols", type=int, default=10)
ap.add_argument("--numrot", default="4,92,360")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--ref-images", type=int, default=3)
ap.add_argument("--loop-ref", action="store_true")
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from catclean.som import (  # noqa: E402
    SOMSettings,
    Stage,
    make_plan,
    map_images,
    pinkio,
    train_som,
)
from catclean.som.core import update_factors  # noqa: E402

SIGMA, DAMPING = 1.1, 0.2


def synthetic(n, size, seed):
    """Seeded random ellipses (half) and double-lobed sources (half), peak-normalised."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        t = rng.uniform(0, np.pi)
        dx, dy = rng.normal(0, 1.5, 2)
        u = (xx - dx) * np.cos(t) + (yy - dy) * np.sin(t)
        v = -(xx - dx) * np.sin(t) + (yy - dy) * np.cos(t)
        if i % 2 == 0:
            a = rng.uniform(3, 12)
            b = rng.uniform(1.5, a)
            img = np.exp(-0.5 * ((u / a) ** 2 + (v / b) ** 2))
        else:
            sep, w = rng.uniform(6, 18), rng.uniform(1.5, 4)
            r = rng.uniform(0.4, 1.0)
            img = np.exp(-0.5 * ((u - sep) ** 2 + v**2) / w**2)
            img += r * np.exp(-0.5 * ((u + sep) ** 2 + v**2) / w**2)
        img += rng.normal(0, 0.02, img.shape)
        img = np.clip(img, 0, None)
        out[i] = img / img.max()
    return out


def direct_reference(imgs, w0, st, stage):
    """PINK CPU structure in numpy: all transforms, per-neuron distance loop, update."""
    plan = make_plan(imgs.shape[-1], 1, stage.numrot, st.flip)
    h = update_factors(st, stage)
    w = w0.reshape(w0.shape[0], -1).astype(np.float32).copy()
    mask = np.tile(plan.mask.ravel(), 1)
    bmus = []
    for x in imgs.reshape(imgs.shape[0], -1):
        t = np.stack([plan.full_transform(x, k).ravel() for k in range(plan.n_transforms)])
        tm = t[:, mask]
        best_d = np.empty(w.shape[0], np.float32)
        best_k = np.empty(w.shape[0], np.int64)
        for n in range(w.shape[0]):  # PINK: for each neuron, loop over transforms
            d = ((tm - w[n, mask]) ** 2).sum(axis=1)
            best_k[n] = d.argmin()
            best_d[n] = d[best_k[n]]
        b = int(best_d.argmin())
        bmus.append(b)
        for n in range(w.shape[0]):
            w[n] -= (w[n] - t[best_k[n]]) * h[b, n]
    return w, bmus


def run_pink(pink, img_file, tmp, numrot, n):
    common = [
        "--numrot", str(numrot), "--som-width", str(args.cols), "--som-height", str(args.rows),
        "--numthreads", str(args.threads), "--cuda-off", "-p", "1",
    ]  # fmt: skip
    som_file, map_file, rot_file = (tmp / f"pink_{numrot}_{s}.bin" for s in ("som", "map", "rot"))
    c0 = _child_cpu()
    t0 = time.perf_counter()
    subprocess.run(
        [pink, "--train", str(img_file), str(som_file), "--init", "random", "--seed",
         str(args.seed), "--num-iter", "1", "--dist-func", "unitygaussian", str(SIGMA),
         str(DAMPING), *common],
        check=True, capture_output=True,
    )  # fmt: skip
    t_train = time.perf_counter() - t0
    c1 = _child_cpu()
    t0 = time.perf_counter()
    subprocess.run(
        [pink, "--map", str(img_file), str(map_file), str(som_file), "--store-rot-flip",
         str(rot_file), *common],
        check=True, capture_output=True,
    )  # fmt: skip
    t_map = time.perf_counter() - t0
    c2 = _child_cpu()
    return n / t_train, n / t_map, n / (c1 - c0), n / (c2 - c1), som_file, map_file


def _child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    imgs = synthetic(args.images, args.size, args.seed)
    pink = os.environ.get("PINK_BIN")
    tmp = Path(tempfile.mkdtemp(prefix="bench_som_"))
    img_file = tmp / "images.bin"
    pinkio.write_images(img_file, imgs, comment="bench_som_rotations synthetic images")
    print(
        f"{args.images} images {args.size}x{args.size}, SOM {args.rows}x{args.cols}, 1 epoch, "
        f"flip on, unitygaussian sigma={SIGMA} damping={DAMPING}, threads={args.threads}, "
        f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"
    )
    for numrot in [int(v) for v in args.numrot.split(",")]:
        stage = Stage(SIGMA, DAMPING, numrot, 1)
        st = SOMSettings.from_preset("small", rows=args.rows, cols=args.cols, schedule=[stage], init="random")
        t0, c0 = time.perf_counter(), time.process_time()
        som = train_som(imgs, st, seed=args.seed)
        t_train, c_train = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        res = map_images(som, imgs)
        t_map, c_map = time.perf_counter() - t0, time.process_time() - c0
        plan = som.plan()
        n = args.images
        line = (
            f"numrot {numrot:4d} ({plan.n_transforms} transforms, neuron {plan.neuron_dim}, "
            f"region {plan.ed_dim}): train {n / t_train:7.1f} img/s ({n / c_train:7.1f} per "
            f"CPU-s), map {n / t_map:7.1f} img/s ({n / c_map:7.1f} per CPU-s), "
            f"quantization error {res.quantization_error():.4f}, "
            f"load avg {os.getloadavg()[0]:.1f}"
        )
        print(line, flush=True)
        if pink:
            p_train, p_map, pc_train, pc_map, som_file, map_file = run_pink(
                pink, img_file, tmp, numrot, len(imgs)
            )
            w, _ = pinkio.load_som_weights(som_file)
            som.weights = w  # map with our code on PINK's SOM
            ours = map_images(som, imgs)
            pm = pinkio.read_mapping(map_file).data
            agree = (pm.argmin(axis=1) == ours.bmu_index).mean()
            dq = np.nanmean(pm.min(axis=1))
            print(
                f"    PINK: train {p_train:7.1f} img/s ({pc_train:7.1f} per CPU-s), map "
                f"{p_map:7.1f} img/s ({pc_map:7.1f} per CPU-s); ours/PINK wall: train "
                f"{n / t_train / p_train:5.1f}x, map {n / t_map / p_map:5.1f}x; per CPU-s: "
                f"train {n / c_train / pc_train:5.1f}x, map {n / c_map / pc_map:5.1f}x; "
                f"PINK QE {dq:.4f}; "
                f"BMU agreement on PINK's SOM {agree:.4f}",
                flush=True,
            )
        else:
            k = min(args.ref_images, len(imgs))
            w0 = np.random.default_rng(0).random(som.weights.shape, dtype=np.float32)
            t0 = time.perf_counter()
            w_ref, bmus = direct_reference(imgs[:k], w0, st, stage)
            t_ref = (time.perf_counter() - t0) / k
            st_ns = SOMSettings.from_preset("small", rows=args.rows, cols=args.cols, schedule=[stage], shuffle=False)
            fast = train_som(imgs[:k], st_ns, seed=0, initial=w0)
            diff = np.abs(fast.weights.reshape(len(w0), -1) - w_ref).max()
            print(
                f"    direct reference (all transforms, per-neuron loop): "
                f"{1 / t_ref:8.2f} img/s -> training speed-up {args.images / t_train * t_ref:6.1f}x"
                f" (max |dw| vs fast on {k} images: {diff:.1e})",
                flush=True,
            )
            if args.loop_ref and numrot == 4:
                sys.path.insert(0, str(ROOT / "tests"))
                from test_som import ref_train

                t0 = time.perf_counter()
                ref_train(imgs[:1, None], w0, st_ns, stage)
                t_loop = time.perf_counter() - t0
                print(
                    f"    plain-loop reference (tests/test_som.py): {1 / t_loop:8.4f} img/s -> "
                    f"speed-up {args.images / t_train * t_loop:8.0f}x",
                    flush=True,
                )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
