"""Morphology inference throughput: batched vs image-by-image, default and paper networks.

For each network -- ``tiny`` (the default run's preset in ``config/config.yaml``:
ResNet-10/8, 128 px), ``small`` (the schema's default preset and the recorded run:
ResNet-18/16, 128 px) and ``paper`` (Table 1: ResNet-101, FPN 256, 256 px); random weights,
throughput does not depend on them -- it measures, in the same run and on the same
simulated 256 px fields:

- ``batched``: :func:`catclean.morphology.infer.segment_hosts` with ``--batch`` fields per
  network call (resampling, detection, mask pasting, host table), fields / s;
- ``image_by_image`` (the named baseline): the same function called once per field,
  fields / s;

and prints the ratio and the projected time for 10^6 host fields. The first call of each
network (graph tracing) is excluded. The two are timed alternately ``--rounds`` times and
the median rate of each is printed, so that a change of the machine's load during the run
does not favour one of them. Threads and seeds come from
:func:`catclean.runtime.setup`, as in the rules. The machine's load average is printed
before and after: on a shared machine the rates scale with the share of the cores this
process gets.

Run:  .venv/bin/python benchmarks/bench_morphology.py [--n 16] [--n-paper 4] [--batch 16]
          [--presets tiny small paper] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _rate(fn, images, batch):
    t = time.perf_counter()
    fn(images, batch)
    return len(images) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16, help="fields for the tiny / small networks")
    ap.add_argument("--n-paper", type=int, default=4, help="fields for the paper network")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"])
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TF_THREADS", 2)))
    a = ap.parse_args()
    import numpy as np

    from catclean.runtime import setup

    setup(threads=a.threads, seed=0, tensorflow=True)  # the rules' thread / seed set-up
    from catclean.morphology.config import preset
    from catclean.morphology.infer import segment_hosts
    from catclean.morphology.network import build_model, count_params
    from catclean.morphology.simulate import simulate_fields

    n_max = max(a.n_paper if p == "paper" else a.n for p in a.presets)
    fields = simulate_fields(n_max, seed=0)["images"]
    print(f"{len(fields)} simulated 256 px fields, {a.threads} TF threads, load average "
          f"{os.getloadavg()[0]:.1f} (1 min)")

    def batched(model):
        return lambda imgs, b: segment_hosts(model, imgs, min_score=0.0, batch_size=b)

    def one_by_one(model):
        return lambda imgs, b: [segment_hosts(model, im[None], min_score=0.0, batch_size=1)
                                for im in imgs]

    for name in a.presets:
        cfg = preset(name)
        model = build_model(cfg)
        imgs = fields[:a.n_paper if name == "paper" else a.n]
        segment_hosts(model, imgs[:2], batch_size=a.batch)  # trace
        rates = [(_rate(batched(model), imgs, a.batch), _rate(one_by_one(model), imgs, 1))
                 for _ in range(a.rounds)]
        r_b, r_1 = (float(np.median(r)) for r in zip(*rates))
        print(f"{name:6s} {cfg.backbone:9s} {cfg.image_size:3d}px "
              f"{count_params(model) / 1e6:6.2f}M params | {len(imgs):3d} fields | "
              f"batched({a.batch}) {r_b:7.2f} fields/s | image_by_image (baseline) "
              f"{r_1:7.2f} fields/s | ratio {r_b / r_1:5.2f}x | 10^6 fields batched: "
              f"{1e6 / r_b / 3600:7.1f} h")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
