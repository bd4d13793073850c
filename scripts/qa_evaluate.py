"""Evaluate the QA models on held-out synthetic exposures, in one process.

Runs the whole QA stage (simulate -> extract -> stellarity -> SOM -> representatives ->
M1/M2/M3 -> grades) for the ``qa`` section of a config file with optional overrides and
prints the held-out accuracies (per CCD and per exposure), the stellarity ROC AUC and the
classical-cut comparison as JSON. Not a rule script: a command for docs/qa.md.

Example (a larger set than the default run):
  .venv/bin/python scripts/qa_evaluate.py --train-per-class 40 --test-per-class 20 \
      --n-ccd 8 --workdir /tmp/qa_eval --out /tmp/qa_eval/metrics.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from catclean.config import REPO_ROOT, load_config  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--config", default=str(REPO_ROOT / "config" / "config.yaml"))
ap.add_argument("--train-per-class", type=int)
ap.add_argument("--test-per-class", type=int)
ap.add_argument("--n-ccd", type=int)
ap.add_argument("--ccd-shape", type=int, nargs=2, metavar=("NY", "NX"))
ap.add_argument("--seed", type=int)
ap.add_argument("--workdir", required=True)
ap.add_argument("--out", default=None)
args = ap.parse_args()

cfg = load_config(args.config)
qa = cfg["qa"]
qa["simulate"]["n_batches"] = 1
if args.train_per_class:
    qa["simulate"]["n_train_per_class"] = args.train_per_class
if args.test_per_class:
    qa["simulate"]["n_test_per_class"] = args.test_per_class
if args.n_ccd:
    qa["simulate"]["n_ccd"] = args.n_ccd
if args.ccd_shape:
    qa["simulate"]["ccd_shape"] = list(args.ccd_shape)
seed = args.seed if args.seed is not None else cfg["seed"]

from catclean.qa.run import classical_vs_model, run_stage  # noqa: E402

t0 = time.time()
res = run_stage(qa, seed, args.workdir, log=lambda m: print(m, file=sys.stderr))
g = res["grades"]
test = g[(g["split"] == "test") & (g["status"] != "failed")]
out = {
    "seed": seed,
    "simulate": res["qa"]["simulate"],
    "accuracy": {k: {kk: v[kk] for kk in ("test_accuracy_ccd", "test_accuracy_exposure",
                                          "n_test_ccd", "n_test_exposures", "epochs", "params")}
                 for k, v in res["metrics"].items()},
    "confusion_M3_exposure": res["metrics"]["M3"]["confusion_exposure"],
    "stellarity": res["stellarity_metrics"],
    "classical_vs_M3": classical_vs_model(test).to_dict(orient="records"),
    "status_counts": g["status"].value_counts().to_dict(),
    "wall_s": round(time.time() - t0, 1),
}
text = json.dumps(out, indent=2, default=float)
print(text)
if args.out:
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
