"""Shred scoring throughput by inference precision (issue 16), all in one run.

For the paper-size shred CNN (10.58M parameters, 128x128x3) and the small preset, on the
same cutouts in the same sharded cutout store, through
:func:`catclean.shreds.score.score_partition` (store read + inference, one model load):

- ``eager``: today's path before issue 16 -- the Keras model called eagerly, layer by
  layer, per batch (the baseline);
- ``float32``: the compiled fixed-shape :class:`catclean.inference.Predictor`;
- ``bfloat16``: the same with Keras ``mixed_bfloat16`` (float32 softmax), only on CPUs
  with native bf16;
- ``int8``: ONNX Runtime on the statically quantized model (calibrated on other cutouts).

Each line has cutouts/s, the ratio to ``eager`` measured in this run, the accuracy guard
against the float32 eager scores on the same cutouts (max |dp_shred|, is_shred flips;
limits bf16 1e-3 / 0.1%, int8 0.02 / 0.5%) and the projected time for 10^6 cutouts. The
guard of :func:`catclean.inference.prepare` (on other cutouts; what decides whether a
precision is offered) is printed too. Weights are random unless ``--model`` (and
``--data``, its training set, for the calibration) name a trained model: throughput does
not depend on them, but accuracy does.

Run:  .venv/bin/python benchmarks/bench_shreds_throughput.py [--n 512] [--sizes paper,small]
      [--model shred_cnn.keras --data training_set.npz]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


class EagerScorer:
    """The scorer as it was before issue 16: ``model(x)`` eagerly per batch."""

    def __init__(self, model, batch_size):
        self.model, self.batch_size, self.precision = model, batch_size, "eager"

    def predict(self, images):
        out = [np.asarray(self.model(images[s:s + self.batch_size].astype(np.float32) / 255.0,
                                     training=False))[:, 1]
               for s in range(0, len(images), self.batch_size)]
        return np.concatenate(out).astype(np.float64)


def _bench(size, a, tmp: Path) -> None:
    import keras

    from catclean.cutouts import CutoutStore, write_store
    from catclean.inference import GUARDS, MAX_AUC_CHANGE, guard, load_keras, prepare
    from catclean.shreds.model import ShredArch, build_shred_cnn
    from catclean.shreds.score import ShredScorer, score_partition

    rng = np.random.default_rng(0)
    if a.model:
        model = load_keras(a.model)
    else:
        keras.utils.set_random_seed(0)
        model = build_shred_cnn(ShredArch.from_preset(size))
    path = tmp / f"{size}.keras"
    model.save(path)
    if a.data:
        pool = np.load(a.data, allow_pickle=False)["images"]
        pick = rng.permutation(len(pool))
        imgs, calib = pool[pick[:a.n]], pool[pick[a.n:a.n + a.calibration]]
    else:
        imgs = rng.integers(0, 255, (a.n, 128, 128, 3)).astype(np.uint8)
        calib = rng.integers(0, 255, (a.calibration, 128, 128, 3)).astype(np.uint8)
    ids = [f"legacy:dr9:{i}" for i in range(len(imgs))]
    write_store(tmp / f"rgb_{size}", ids, imgs, ["ok"] * len(imgs), shard_size=4096)
    store = CutoutStore(tmp / f"rgb_{size}")
    cuts = pd.DataFrame({"source_id": ids, "passes_cuts": True, "cut_reason": ""})
    t0 = time.perf_counter()
    card = prepare(model, calib.astype(np.float32) / 255.0,
                   calib[::-1][:a.check].astype(np.float32) / 255.0, tmp / f"inf_{size}",
                   score=lambda o: o[:, 1], batch_size=a.batch)
    t_prep = time.perf_counter() - t0
    # run every precision that converted, offered or not, to show its guard here too
    bench_card = {"precisions": {k: dict(v, offered="cutouts_per_s" in v)
                                 for k, v in card["precisions"].items()}}
    (tmp / f"inf_{size}" / "card.json").write_text(__import__("json").dumps(bench_card))
    print(f"\n== {size}: {model.count_params():,} parameters, {len(imgs)} cutouts, batch "
          f"{a.batch}, {a.threads} threads; prepare (convert, calibrate on {len(calib)}, "
          f"guard on {min(a.check, len(calib))}) {t_prep:.1f} s; auto -> {card['auto']}")
    real = None
    if a.real:  # the real validation eye labels (issue 11): the AUC guard of issue 16
        from sklearn.metrics import roc_auc_score

        from catclean.shreds.real import load_real_labels, split_xy

        real = split_xy(load_real_labels(a.real), "validation")
    rows, p_ref, base, auc_ref = [], None, None, None
    for prec in ("eager", "float32", "bfloat16", "int8"):
        entry = card["precisions"].get(prec, {})
        if prec != "eager" and "cutouts_per_s" not in entry:
            print(f"{prec:9s} not run: {entry.get('reason', '')}")
            continue
        scorer = EagerScorer(model, a.batch) if prec == "eager" else ShredScorer(
            path, kind="keras", batch_size=a.batch, precision=prec,
            inference_dir=tmp / f"inf_{size}")
        scorer.predict(imgs[:a.batch])  # warm-up / tracing, as once per job
        t0 = time.perf_counter()
        out = score_partition(cuts, store, scorer, batch_size=a.read_batch)
        rate = len(imgs) / (time.perf_counter() - t0)
        p = out["p_shred"].to_numpy(dtype=float)
        if prec == "eager":
            p_ref, base = p, rate
            g = {"max_dp": 0.0, "flips": 0, "flip_rate": 0.0, "passed": True}
        else:
            g = guard(p_ref, p, prec if prec in GUARDS else "bfloat16")
        if prec == "float32":
            g["passed"] = bool(np.array_equal(p, p_ref))  # compiled must equal eager
        auc = None
        if real is not None:
            auc = float(roc_auc_score(real[1], scorer.predict(real[0])))
            auc_ref = auc if prec == "eager" else auc_ref
            g["passed"] = g["passed"] and abs(auc - auc_ref) <= MAX_AUC_CHANGE
        offered = "baseline" if prec == "eager" else (
            "offered" if entry.get("offered") else "NOT offered")
        rows.append(dict(path=prec, rate=rate, ratio=rate / base, max_dp=g["max_dp"],
                         flips=g["flips"], n=len(p), ok=g["passed"], card=offered,
                         card_dp=entry.get("max_dp"), hours=1e6 / rate / 3600, auc=auc))
    print(f"{'path':9s} {'cutouts/s':>10s} {'x eager':>8s} {'max|dp|':>9s} {'flips':>7s} "
          f"{'guard':>6s} {'card (prepare)':>22s} {'10^6 cutouts':>13s}"
          + ("  real-label AUC (change)" if real is not None else ""))
    for r in rows:
        card_dp = f" {r['card_dp']:.1e}" if r["card_dp"] is not None else ""
        auc = (f"  {r['auc']:.4f} ({r['auc'] - auc_ref:+.4f})" if r["auc"] is not None
               else "")
        print(f"{r['path']:9s} {r['rate']:10.1f} {r['ratio']:8.2f} {r['max_dp']:9.1e} "
              f"{r['flips']:3d}/{r['n']:<3d} {'ok' if r['ok'] else 'FAIL':>6s} "
              f"{r['card'] + card_dp:>22s} {r['hours'] * 60:9.1f} min{auc}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512, help="cutouts scored by every path")
    ap.add_argument("--batch", type=int, default=64, help="inference batch (shreds.batch_size)")
    ap.add_argument("--read-batch", type=int, default=256, help="cutouts per store read")
    ap.add_argument("--calibration", type=int, default=128, help="int8 calibration cutouts")
    ap.add_argument("--check", type=int, default=128, help="guard cutouts of prepare")
    ap.add_argument("--sizes", default="paper,small")
    ap.add_argument("--model", help="a trained .keras shred model (default: random weights)")
    ap.add_argument("--data", help="its training set .npz (cutouts and calibration)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TF_THREADS", 2)))
    ap.add_argument("--real", help="real cutout directory: AUC on the real validation eye "
                    "labels per precision (change <= 0.005 against eager)")
    a = ap.parse_args()
    from catclean.inference import cpu_has_bf16
    from catclean.runtime import setup

    setup(threads=a.threads, seed=0, tensorflow=True)  # the rules' thread / seed set-up
    print(f"CPU native bf16: {cpu_has_bf16()}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs (compare ratios within this run)")
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.sizes.split(","):
            _bench(size, a, Path(tmp))


if __name__ == "__main__":
    main()
