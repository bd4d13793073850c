"""Rule `evaluate_shreds`: metrics JSON, ROC (paper 001 Fig. 3), example grid (Fig. 4)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import json  # noqa: E402

import numpy as np  # noqa: E402

from catclean.runtime import rule_logging  # noqa: E402
from catclean.shreds.plots import examples_figure, roc_figure  # noqa: E402

log = rule_logging(snakemake.log[0])
cv = json.loads(Path(snakemake.input.cv).read_text())
d = np.load(snakemake.input.data, allow_pickle=False)
idx = np.asarray(cv["test"]["index"], dtype=int)
p = np.asarray(cv["test"]["p_shred"])
roc_figure(cv, snakemake.output.roc)
examples_figure(d["images"][idx], p, d["labels"][idx], snakemake.output.examples,
                seed=snakemake.params.seed)
strip = ("roc_fpr", "roc_tpr")
metrics = {
    "preset": cv.get("preset"), "n_params": cv.get("n_params"), "n_total": cv["n_total"],
    "n_test": cv["n_test"], "n_cv": cv["n_cv"], "folds_run": len(cv["folds"]),
    "folds": [{"fold": f["fold"], "epochs": f["epochs"], "best_val_loss": f["best_val_loss"],
               "train_seconds": f["train_seconds"],
               **{k: v for k, v in f["test"].items() if k not in strip}} for f in cv["folds"]],
    "mean": cv["mean"], "kept_fold": cv["kept_fold"],
    "kept": {k: v for k, v in cv["kept"].items() if k not in strip},
    "train_wall_seconds": cv.get("wall_seconds"), "config": cv["config"], "arch": cv["arch"],
}
Path(snakemake.output.metrics).write_text(json.dumps(metrics, indent=1))
log.info("test AUC mean %s accuracy %s", cv["mean"]["auc"], cv["mean"]["accuracy"])
