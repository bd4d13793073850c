"""Store a fine-tuned shred CNN as the model that ships with catclean (maintainers only).

Writes ``src/catclean/shreds/shipped/shred_cnn_paper.keras`` (float16 weights, no optimizer
state: :func:`catclean.inference.save_float16`) and ``metrics.json`` beside it, gathered
from the runs that made it: the pre-training ``cv.json`` (synthetic sky), the fine-tuning
``cv.json`` (real eye labels), optionally the synthetic refresh's ``cv.json`` (``train
--init``) and ``interpolation.json`` (``catclean shreds interpolate``), and
``real_validation.json`` (``catclean shreds evaluate-real``). A step whose ``cv.json`` is
gone is carried over from the ``metrics.json`` of an earlier release (``--previous``).
``MODEL_CARD.md`` is written by hand from ``metrics.json``.

Run::

    PYTHONPATH=src .venv/bin/python tools/ship_shred_model.py --model mix/shred_cnn.keras \\
        --previous metrics_before.json --refresh refresh/cv.json \\
        --interpolation mix/interpolation.json --real-eval eval/real_validation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _cv_summary(cv: dict) -> dict:
    from catclean.shreds.train import without_roc

    # a warm start (train --init) names its model; fine-tuning with rehearsal also scores
    # the kept model on the synthetic held-out test
    extra = {k: cv[k] for k in ("init_model", "rehearsal") if k in cv}
    if "synthetic_test" in cv:
        extra["synthetic_test"] = without_roc(cv["synthetic_test"])
    return {**extra, "n_total": cv["n_total"], "n_test": cv["n_test"], "n_cv": cv["n_cv"],
            "config": cv["config"], "mean": cv["mean"], "kept_fold": cv["kept_fold"],
            "kept_model": cv.get("kept_model", f"fold {cv['kept_fold']}"),
            "kept": without_roc(cv["kept"]),
            "folds": [{"fold": f["fold"], "epochs": f["epochs"], "best_epoch": f["best_epoch"],
                       "best_val_loss": round(f["best_val_loss"], 4),
                       "train_seconds": f["train_seconds"], "test_auc": f["test"]["auc"],
                       "test_accuracy": f["test"]["accuracy"]} for f in cv["folds"]]}


def main() -> int:
    from catclean.inference import load_keras, save_float16
    from catclean.shreds.model import SHIPPED_SHRED_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the .keras model to ship")
    ap.add_argument("--pretrain", help="cv.json of the pre-training")
    ap.add_argument("--finetune", help="cv.json of the fine-tuning")
    ap.add_argument("--previous", help="metrics.json of an earlier release: the steps "
                    "given no cv.json here are carried over from it")
    ap.add_argument("--refresh", help="cv.json of the synthetic refresh (train --init)")
    ap.add_argument("--interpolation", help="interpolation.json (shreds interpolate)")
    ap.add_argument("--real-eval", required=True, help="real_validation.json")
    a = ap.parse_args()
    previous = json.loads(Path(a.previous).read_text()) if a.previous else {}
    steps = {}
    for step, flag, path in (("pretraining", "pretrain", a.pretrain),
                             ("finetuning", "finetune", a.finetune),
                             ("refresh", "refresh", a.refresh)):
        if path:
            steps[step] = _cv_summary(json.loads(Path(path).read_text()))
        elif step in previous:
            steps[step] = previous[step]
        elif step != "refresh":
            ap.error(f"--{flag} (cv.json) or --previous (with a {step!r} section) needed")
    if a.interpolation:
        steps["interpolation"] = json.loads(Path(a.interpolation).read_text())
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
        **steps,
        "real_validation": json.loads(Path(a.real_eval).read_text()),
    }
    out = SHIPPED_SHRED_MODEL.parent / "metrics.json"
    out.write_text(json.dumps(metrics, indent=1))
    print(f"wrote {SHIPPED_SHRED_MODEL} ({metrics['bytes'] / 1e6:.1f} MB, float16 storage "
          f"max |dp| {dp:.1e}) and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
