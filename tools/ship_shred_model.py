"""Store a fine-tuned shred CNN as the model that ships with catclean (maintainers only).

Writes ``src/catclean/shreds/shipped/shred_cnn_paper.keras`` (float16 weights, no optimizer
state: :func:`catclean.inference.save_float16`) and ``metrics.json`` beside it, gathered
from the runs that made it: the pre-training ``cv.json`` (synthetic sky), the fine-tuning
``cv.json`` (real eye labels) and ``real_validation.json`` (``catclean shreds
evaluate-real``). ``MODEL_CARD.md`` is written by hand from ``metrics.json``.

Run::

    PYTHONPATH=src .venv/bin/python tools/ship_shred_model.py --model ft/shred_cnn.keras \\
        --pretrain pre/cv.json --finetune ft/cv.json --real-eval eval/real_validation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _no_roc(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("roc_fpr", "roc_tpr")}


def _cv_summary(cv: dict) -> dict:
    # a warm start (train --init) names its model; fine-tuning with rehearsal also scores
    # the kept model on the synthetic held-out test
    extra = {k: cv[k] for k in ("init_model", "rehearsal") if k in cv}
    if "synthetic_test" in cv:
        extra["synthetic_test"] = _no_roc(cv["synthetic_test"])
    return {**extra, "n_total": cv["n_total"], "n_test": cv["n_test"], "n_cv": cv["n_cv"],
            "config": cv["config"], "mean": cv["mean"], "kept_fold": cv["kept_fold"],
            "kept_model": cv.get("kept_model", f"fold {cv['kept_fold']}"),
            "kept": _no_roc(cv["kept"]),
            "folds": [{"fold": f["fold"], "epochs": f["epochs"], "best_epoch": f["best_epoch"],
                       "best_val_loss": round(f["best_val_loss"], 4),
                       "train_seconds": f["train_seconds"], "test_auc": f["test"]["auc"],
                       "test_accuracy": f["test"]["accuracy"]} for f in cv["folds"]]}


def main() -> int:
    from catclean.inference import load_keras, save_float16
    from catclean.shreds.model import SHIPPED_SHRED_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the fine-tuned .keras model")
    ap.add_argument("--pretrain", required=True, help="cv.json of the pre-training")
    ap.add_argument("--finetune", required=True, help="cv.json of the fine-tuning")
    ap.add_argument("--real-eval", required=True, help="real_validation.json")
    a = ap.parse_args()
    model = load_keras(a.model)
    save_float16(model, SHIPPED_SHRED_MODEL)
    back = load_keras(SHIPPED_SHRED_MODEL)
    x = np.random.default_rng(0).uniform(0, 1, (16, 128, 128, 3)).astype(np.float32)
    dp = float(np.abs(back.predict(x, verbose=0) - model.predict(x, verbose=0)).max())
    metrics = {
        "file": SHIPPED_SHRED_MODEL.name,
        "bytes": SHIPPED_SHRED_MODEL.stat().st_size,
        "n_params": int(model.count_params()),
        "float16_storage_max_dp_on_16_random_inputs": dp,
        "pretraining": _cv_summary(json.loads(Path(a.pretrain).read_text())),
        "finetuning": _cv_summary(json.loads(Path(a.finetune).read_text())),
        "real_validation": json.loads(Path(a.real_eval).read_text()),
    }
    out = SHIPPED_SHRED_MODEL.parent / "metrics.json"
    out.write_text(json.dumps(metrics, indent=1))
    print(f"wrote {SHIPPED_SHRED_MODEL} ({metrics['bytes'] / 1e6:.1f} MB, float16 storage "
          f"max |dp| {dp:.1e}) and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
