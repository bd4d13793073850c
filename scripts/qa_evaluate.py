"""Evaluate the QA models on held-out synthetic exposures, in one process.

Runs the whole QA stage (simulate -> extract -> stellarity -> SOM -> representatives ->
M1/M2/M3 -> grades) for the ``qa`` section of a config file with optional overrides and
prints the held-out accuracies (per CCD and per exposure, with the configured and the
mean-log combination rule), confusion matrices, correct/total per EXPTIME bin, the fitted
combiners, the stellarity ROC AUC and the classical-cut comparison as JSON. The data steps
are cached in WORKDIR/prepared.pkl (``--prepare-only`` / ``--from-cache`` split the run).
Not a rule script: a command for docs/qa.md.

Acceptance evaluation (docs/qa.md, ~22 min on one core):
  .venv/bin/python scripts/qa_evaluate.py --train-per-class 40 --test-per-class 20 \
      --n-ccd 8 --ccd-shape 1024 1024 --seed 31415 --threads 1 \
      --workdir /tmp/qa_accept --out /tmp/qa_accept/metrics.json
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
ap.add_argument("--threads", type=int, help="CPU threads (TensorFlow, SOM); default: config")
ap.add_argument("--models", default=None, metavar="JSON",
                help='overrides of qa.models, e.g. \'{"l2": 0.001, "dropout": 0.3}\'')
ap.add_argument("--workdir", required=True)
ap.add_argument("--out", default=None)
ap.add_argument("--prepare-only", action="store_true",
                help="stop after the data steps (simulate ... representatives) and cache them "
                     "in WORKDIR/prepared.pkl")
ap.add_argument("--from-cache", action="store_true",
                help="load WORKDIR/prepared.pkl (written by --prepare-only with the same "
                     "options) and run only the model steps")
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
if args.threads:
    qa["threads"] = args.threads
if args.models:
    qa["models"] = {**qa.get("models", {}), **json.loads(args.models)}
seed = args.seed if args.seed is not None else cfg["seed"]

import pickle  # noqa: E402

import numpy as np  # noqa: E402

from catclean.qa import CLASSES  # noqa: E402
from catclean.qa.run import classical_vs_model, finish_stage, prepare_stage, qa_config  # noqa: E402


def log(m):
    print(time.strftime("%H:%M:%S"), m, file=sys.stderr, flush=True)


t0 = time.time()
cache = Path(args.workdir) / "prepared.pkl"
if args.from_cache:
    # our own file, written by --prepare-only below
    with open(cache, "rb") as fh:
        res = pickle.load(fh)
    res["qa"]["threads"] = qa["threads"]
    res["qa"]["models"] = qa["models"]
    res["qa"]["grade"] = qa["grade"]
    if res["seed"] != seed or res["qa"]["simulate"] != qa_config(qa)["simulate"]:
        raise SystemExit(f"{cache} was prepared with other options (seed {res['seed']})")
    log(f"loaded {cache} (prepared in {res['prepare_s']:.0f} s)")
else:
    res = prepare_stage(qa, seed, args.workdir, log=log)
    res["seed"] = seed
    res["prepare_s"] = time.time() - t0
    with open(cache, "wb") as fh:
        pickle.dump(res, fh)
    log(f"data steps done in {res['prepare_s']:.0f} s; cached in {cache}")
    if args.prepare_only:
        raise SystemExit(0)
t1 = time.time()
res = finish_stage(res, seed, log=log)
g = res["grades"]
test = g[(g["split"] == "test") & (g["status"] != "failed")]
exptime = dict(zip(g["expid"].astype(str), g["exptime"]))


def by_exptime(ex):
    """Per-exposure accuracy in EXPTIME bins (s)."""
    out = {}
    t = np.array([exptime.get(e, np.nan) for e in ex["expid"]])
    ok = np.array(ex["true"]) == np.array(ex["pred"])
    for lo, hi in ((0, 10), (10, 30), (30, 1e9)):
        m = (t >= lo) & (t < hi)
        out[f"{lo}-{hi if hi < 1e9 else 'inf'} s"] = [int(ok[m].sum()), int(m.sum())]
    return out


out = {
    "seed": seed,
    "simulate": res["qa"]["simulate"],
    "models": res["qa"]["models"],
    "combine": res["qa"]["grade"].get("combine", "trained"),
    "accuracy": {k: {kk: v[kk] for kk in ("test_accuracy_ccd", "test_accuracy_exposure",
                                          "test_accuracy_exposure_mean_log",
                                          "n_test_ccd", "n_test_exposures", "epochs", "params")}
                 for k, v in res["metrics"].items()},
    "confusion_exposure": {k: v["confusion_exposure"] for k, v in res["metrics"].items()},
    "confusion_exposure_mean_log": {k: v["confusion_exposure_mean_log"]
                                    for k, v in res["metrics"].items()},
    "confusion_ccd": {k: v["confusion_ccd"] for k, v in res["metrics"].items()},
    "correct_by_exptime": {k: by_exptime(v["test_exposures"]) for k, v in res["metrics"].items()},
    "combiner": {k: v.get("combiner") for k, v in res["metrics"].items()},
    # per held-out exposure: id, EXPTIME (s), true and predicted class index (CLASSES order)
    "test_exposures": {k: [{"expid": e, "exptime": exptime.get(e), "true": t, "pred": q}
                           for e, t, q in zip(v["test_exposures"]["expid"],
                                              v["test_exposures"]["true"],
                                              v["test_exposures"]["pred"])]
                       for k, v in res["metrics"].items()},
    "classes": list(CLASSES),
    "stellarity": res["stellarity_metrics"],
    "classical_vs_M3": classical_vs_model(test).to_dict(orient="records"),
    "status_counts": g["status"].value_counts().to_dict(),
    "prepare_s": round(res["prepare_s"], 1),
    "models_s": round(time.time() - t1, 1),
    "wall_s": round(time.time() - t0, 1),
}
text = json.dumps(out, indent=2, default=float)
print(text)
if args.out:
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
