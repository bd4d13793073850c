"""Morphology training cost per step, extrapolated to an epoch and to the whole schedule.

For each preset (default ``paper``: Table 1, ResNet-101, 256 px, batch 2, 1000 steps per
epoch, heads 10 + all 40 epochs) it builds the network from scratch, traces the one
compiled training step of :mod:`catclean.morphology.train` (timed separately: paid once
per job), then times ``--steps`` optimiser steps on simulated 256 px fields (batches with
augmentation and targets, as in training) and extrapolates linearly:

- s / step (mean of the timed steps, excluding the first, traced, call);
- s / epoch = s / step x ``steps_per_epoch``;
- whole schedule = s / step x sum of the stages' epochs x ``steps_per_epoch``;
- the same from the process CPU time per step divided by the threads: what an idle
  machine would take, independent of other users' load.

This is an extrapolation from a few steps, not a measured epoch. Threads and seeds come
from :func:`catclean.runtime.setup`. The load average is printed: on a shared machine the
times scale with the share of the cores this process gets.

Run:  .venv/bin/python benchmarks/bench_morphology_train.py [--presets paper] [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["paper"])
    ap.add_argument("--steps", type=int, default=3, help="timed steps after the traced one")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TF_THREADS", 2)))
    a = ap.parse_args()
    from catclean.runtime import setup

    setup(threads=a.threads, seed=0, tensorflow=True)
    import numpy as np
    import tensorflow as tf

    from catclean.morphology.config import preset
    from catclean.morphology.network import build_model, count_params
    from catclean.morphology.simulate import simulate_fields
    from catclean.morphology.train import _make_step, make_batch, make_optimizer

    for name in a.presets:
        cfg = preset(name)
        fields = simulate_fields(2 * cfg.batch_size, seed=0)
        model = build_model(cfg)
        variables = list(model.trainable_weights)
        flags = [tf.Variable(1.0, trainable=False) for _ in variables]
        opt = make_optimizer(cfg)
        opt.build(variables)
        step = _make_step(model, variables, flags, opt)
        rng = np.random.default_rng(0)
        idx = np.arange(len(fields["classes"]))
        load0 = os.getloadavg()[0]
        times, cpu = [], []
        for _ in range(a.steps + 1):
            batch = make_batch(fields, rng.choice(idx, cfg.batch_size, replace=False), cfg,
                               rng, model.anchors_px)
            t, c = time.perf_counter(), time.process_time()
            losses = step({key: tf.constant(v) for key, v in batch.items()})
            float(losses["total"])
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        per = float(np.mean(times[1:]))
        per_cpu = float(np.mean(cpu[1:]))
        epochs = sum(e for _, e in cfg.stages)
        print(f"{name}: {cfg.backbone}, {cfg.image_size} px, {count_params(model) / 1e6:.2f}M "
              f"params, batch {cfg.batch_size}, {a.threads} TF threads, load average "
              f"{load0:.1f} -> {os.getloadavg()[0]:.1f}")
        print(f"  first step (graph tracing + step): {times[0]:.1f} s; timed steps: "
              f"{', '.join(f'{t:.1f}' for t in times[1:])} s -> {per:.2f} s / step wall, "
              f"{per_cpu:.2f} CPU s / step (all threads; / {a.threads} = idle-machine wall)")
        print(f"  extrapolated: {per * cfg.steps_per_epoch / 3600:.2f} h / epoch "
              f"({cfg.steps_per_epoch} steps); whole schedule {cfg.stages} = "
              f"{epochs * cfg.steps_per_epoch} steps: {per * epochs * cfg.steps_per_epoch / 86400:.1f} days")
        idle = per_cpu / a.threads
        print(f"  from CPU time (load-independent): {idle * cfg.steps_per_epoch / 3600:.2f} h / "
              f"epoch, whole schedule {idle * epochs * cfg.steps_per_epoch / 86400:.1f} days")


if __name__ == "__main__":
    main()
