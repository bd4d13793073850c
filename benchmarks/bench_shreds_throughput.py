"""Shred scoring throughput on this machine: catclean's batched scorer vs a naive baseline.

Measures, for the paper-size shred CNN (10.58M parameters, 128x128x3; random weights --
throughput does not depend on them):

- ``catclean``: :func:`catclean.shreds.score.score_partition` on a sharded cutout store
  (store read + batched inference, one model load), cutouts / s;
- ``naive``: the same model called with ``model.predict`` once per image (a common
  first implementation), cutouts / s, measured in the same run;

and prints the ratio and the projected time for 10^6 cutouts.

Run:  .venv/bin/python benchmarks/bench_shreds_throughput.py [--n 512] [--naive 48]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512, help="cutouts scored by catclean")
    ap.add_argument("--naive", type=int, default=48, help="cutouts scored by the baseline")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TF_THREADS", 2)))
    a = ap.parse_args()
    from catclean.runtime import setup

    setup(threads=a.threads, seed=0, tensorflow=True)  # the rules' thread / seed set-up
    from catclean.cutouts import CutoutStore, write_store
    from catclean.shreds.model import ShredArch, build_shred_cnn
    from catclean.shreds.score import ShredScorer, score_partition

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_shred_cnn(ShredArch.from_preset("paper"))
        model.save(tmp / "paper.keras")
        n_params = model.count_params()
        ids = [f"legacy:dr9:{i}" for i in range(a.n)]
        imgs = rng.integers(0, 255, (a.n, 128, 128, 3)).astype(np.uint8)
        write_store(tmp / "rgb", ids, imgs, ["ok"] * a.n, shard_size=4096)
        cuts = pd.DataFrame({"source_id": ids, "passes_cuts": True, "cut_reason": ""})
        t0 = time.perf_counter()
        scorer = ShredScorer(tmp / "paper.keras", batch_size=a.batch)
        t_load = time.perf_counter() - t0
        scorer.predict(imgs[: a.batch])  # warm-up (graph tracing)
        t0 = time.perf_counter()
        out = score_partition(cuts, CutoutStore(tmp / "rgb"), scorer, batch_size=1024)
        t_fast = time.perf_counter() - t0
        assert out.p_shred.notna().all()
        fast = a.n / t_fast
        # naive baseline: model.predict per image (same model, same inputs)
        model.predict(imgs[:1] / 255.0, verbose=0)
        t0 = time.perf_counter()
        for i in range(a.naive):
            model.predict(imgs[i:i + 1].astype(np.float32) / 255.0, verbose=0)
        naive = a.naive / (time.perf_counter() - t0)
    print(f"shred CNN paper size: {n_params:,} parameters, 128x128x3, {a.threads} TF threads, "
          f"batch {a.batch}")
    print(f"model load: {t_load:.2f} s (once per job)")
    print(f"catclean score_partition (store read + batched inference): {fast:.1f} cutouts/s "
          f"({a.n} cutouts)")
    print(f"naive baseline (model.predict per image):                 {naive:.1f} cutouts/s "
          f"({a.naive} cutouts)")
    print(f"speed-up vs naive: {fast / naive:.1f}x")
    for name, rate in (("catclean", fast), ("naive", naive)):
        print(f"projected time for 10^6 cutouts ({name}): {1e6 / rate / 3600:.2f} h on this CPU")


if __name__ == "__main__":
    main()
