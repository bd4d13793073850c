"""Morphology inference throughput: batched vs image-by-image, default and paper networks.

For each network (``small`` preset: ResNet-18/16, 128 px; ``paper`` preset: ResNet-101,
FPN 256, 256 px, Table 1; random weights -- throughput does not depend on them) it
measures, in the same run and on the same simulated 256 px fields:

- ``batched``: :func:`catclean.morphology.infer.segment_hosts` with ``batch_size`` fields
  per network call (detection + mask pasting + host table), fields / s;
- ``image_by_image`` (named baseline): the same function called once per field, fields / s;

and prints the ratio. The first call of each network (graph tracing) is excluded.

Run:  .venv/bin/python benchmarks/bench_morphology.py [--n 16] [--n-paper 4] [--batch 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")



def _rate(fn, images, batch):
    t = time.perf_counter()
    fn(images, batch)
    return len(images) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16, help="fields for the default network")
    ap.add_argument("--n-paper", type=int, default=4, help="fields for the paper network")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TF_THREADS", 2)))
    a = ap.parse_args()
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    from catclean.morphology.config import preset
    from catclean.morphology.infer import segment_hosts
    from catclean.morphology.network import build_model, count_params
    from catclean.morphology.simulate import simulate_fields

    keras.utils.set_random_seed(0)
    fields = simulate_fields(max(a.n, a.n_paper), seed=0)["images"]

    def batched(model):
        return lambda imgs, b: segment_hosts(model, imgs, min_score=0.0, batch_size=b)

    def one_by_one(model):
        return lambda imgs, b: [segment_hosts(model, im[None], min_score=0.0, batch_size=1)
                                for im in imgs]

    for name, n in (("small", a.n), ("paper", a.n_paper)):
        cfg = preset(name)
        model = build_model(cfg)
        imgs = fields[:n]
        segment_hosts(model, imgs[:2], batch_size=a.batch)  # trace
        r_b = _rate(batched(model), imgs, a.batch)
        r_1 = _rate(one_by_one(model), imgs, 1)
        print(f"{name:6s} {cfg.backbone:9s} {cfg.image_size:3d}px "
              f"{count_params(model) / 1e6:6.2f}M params | batched({a.batch}) "
              f"{r_b:7.2f} fields/s | image_by_image {r_1:7.2f} fields/s | "
              f"ratio {r_b / r_1:5.2f}x | 1e6 fields: {1e6 / r_b / 3600:7.1f} h")


if __name__ == "__main__":
    main()
