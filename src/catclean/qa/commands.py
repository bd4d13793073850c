"""``catclean qa evaluate``: the whole QA stage in one process, held-out metrics as JSON.

Runs the functions of the rules (:mod:`catclean.qa.grading`: simulate -> extract ->
stellarity -> SOM -> representatives -> M1/M2/M3 -> grades) for the resolved config and
prints the held-out accuracies (per CCD and per exposure, with the configured and the
mean-log combination rule), confusion matrices, correct/total per EXPTIME bin, the fitted
combiners, the stellarity ROC AUC and the classical-cut comparison as JSON. In one process
the exposures form one batch (``n_batches`` 1). The data steps are cached in
WORKDIR/prepared.pkl (``--prepare-only`` / ``--from-cache`` split the run).

Acceptance evaluation (docs/qa.md)::

    catclean qa evaluate --train-per-class 40 --test-per-class 20 --n-ccd 8 \\
        --ccd-shape 1024 1024 --seed 31415 --threads 1 \\
        --workdir /tmp/qa_accept --out /tmp/qa_accept/metrics.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd

from catclean.cli import add_config_arguments, config_from_args
from catclean.runtime import setup

from . import CLASSES
from . import grading as g

#: command-line options -> keys of the chosen preset's ``simulate`` section
SIMULATE_FLAGS = {"train_per_class": "n_train_per_class", "test_per_class": "n_test_per_class",
                  "n_ccd": "n_ccd", "ccd_shape": "ccd_shape"}


def register(subparsers) -> None:
    """Add ``catclean qa evaluate``."""
    qa = subparsers.add_parser("qa", help="MegaCam image-quality grading (paper 000)")
    sub = qa.add_subparsers(dest="command", required=True)
    p = sub.add_parser("evaluate", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="run the QA stage in one process and print held-out metrics")
    add_config_arguments(p)
    p.add_argument("--train-per-class", type=int, default=None,
                   help="simulate.n_train_per_class of the chosen preset")
    p.add_argument("--test-per-class", type=int, default=None,
                   help="simulate.n_test_per_class of the chosen preset")
    p.add_argument("--n-ccd", type=int, default=None, help="simulate.n_ccd of the chosen preset")
    p.add_argument("--ccd-shape", type=int, nargs=2, default=None, metavar=("NY", "NX"),
                   help="simulate.ccd_shape of the chosen preset")
    p.add_argument("--seed", type=int, default=None, help="the config's seed")
    p.add_argument("--workdir", required=True, help="exposures and the data-step cache")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--prepare-only", action="store_true",
                   help="stop after the data steps (simulate ... representatives) and cache "
                        "them in WORKDIR/prepared.pkl")
    p.add_argument("--from-cache", action="store_true",
                   help="load WORKDIR/prepared.pkl (written by --prepare-only with the same "
                        "options) and run only the model steps")
    p.set_defaults(func=evaluate)


def evaluate_config(args) -> dict:
    """The resolved config of ``qa evaluate``: the command's options as overrides."""
    preset = config_from_args(args)["qa"]["preset"]
    simulate = {key: (list(getattr(args, flag)) if flag == "ccd_shape" else getattr(args, flag))
                for flag, key in SIMULATE_FLAGS.items() if getattr(args, flag) is not None}
    simulate["n_batches"] = 1
    extra: dict = {"qa": {"presets": {preset: {"simulate": simulate}}}}
    if args.seed is not None:
        extra["seed"] = args.seed
    if args.threads is not None:
        extra["qa"]["threads"] = args.threads
    return config_from_args(args, extra=extra)


def prepare(qa: dict, seed: int, workdir: str | Path, log=print) -> dict:
    """The data steps of every batch in one process: simulate, extract, stellarity, SOM,
    representatives (``qa``: :func:`~catclean.qa.grading.qa_settings`)."""
    workdir = Path(workdir)
    parts: dict = {"exposures": [], "ccds": [], "sources": [], "failures": []}
    for b in range(int(qa["simulate"]["n_batches"])):
        e, t = g.make_exposures(qa["simulate"], seed, b, workdir / f"b{b}")
        log(f"batch {b}: {len(e)} exposures simulated")
        c, s, f = g.extract_sources(e, t, qa["extract"], qa["simulate"]["pixel_scale"],
                                    workers=qa["threads"])
        log(f"batch {b}: {len(c)} CCDs, {len(s)} sources extracted")
        for key, tab in zip(parts, (e, c, s, f)):
            parts[key].append(tab)
    res = {k: pd.concat([t for t in v if len(t)] or v, ignore_index=True)
           for k, v in parts.items()}
    stellarity, stel_metrics, _ = g.train_stellarity(res["sources"], res["exposures"], seed,
                                                      qa["extract"]["backend"])
    log(f"stellarity: {json.dumps(stel_metrics)}")
    som, unit_cluster, _ = g.train_som(res["sources"], res["exposures"], stellarity, qa["som"],
                                       seed, qa["threads"], log)
    reps, clusters = g.representatives(res["exposures"], res["ccds"], res["sources"],
                                       stellarity, som, unit_cluster, qa["stamp"], seed)
    return {**res, "qa": qa, "stellarity": stellarity, "stellarity_metrics": stel_metrics,
            "som": som, "unit_cluster": unit_cluster, "clusters": clusters, "reps": reps}


def train_and_grade(res: dict, seed: int, log=print) -> dict:
    """The model steps on the products of :func:`prepare`: train M1/M2/M3, evaluate them
    and grade every exposure; adds ``models``, ``metrics`` and ``grades``."""
    qa = res["qa"]
    models, metrics = g.train_models(res["reps"], res["exposures"], qa["models"],
                                     qa["grade"]["combine"], seed, log)
    kind = qa["grade"]["model"]
    grades = g.grade_exposures(res["exposures"], res["ccds"], res["sources"],
                               res["clusters"]["stellarity"].to_numpy(), res["failures"],
                               res["reps"], models[kind], qa["grade"],
                               qa["simulate"]["pixel_scale"], combiner=metrics[kind]["combiner"])
    return {**res, "models": models, "metrics": metrics, "grades": grades}


def _by_exptime(ex: dict, exptime: dict) -> dict:
    """Per-exposure correct/total in EXPTIME bins (s)."""
    out = {}
    t = np.array([exptime.get(e, np.nan) for e in ex["expid"]])
    ok = np.array(ex["true"]) == np.array(ex["pred"])
    for lo, hi in ((0, 10), (10, 30), (30, 1e9)):
        m = (t >= lo) & (t < hi)
        out[f"{lo}-{hi if hi < 1e9 else 'inf'} s"] = [int(ok[m].sum()), int(m.sum())]
    return out


def summary(res: dict, seed: int) -> dict:
    """The JSON of ``qa evaluate``."""
    qa, metrics, grades = res["qa"], res["metrics"], res["grades"]
    test = grades[(grades["split"] == "test") & (grades["status"] != "failed")]
    exptime = dict(zip(grades["expid"].astype(str), grades["exptime"]))
    keys = ("test_accuracy_ccd", "test_accuracy_exposure", "test_accuracy_exposure_mean_log",
            "n_test_ccd", "n_test_exposures", "epochs", "params")
    return {
        "seed": seed,
        "simulate": qa["simulate"],
        "models": qa["models"],
        "combine": qa["grade"]["combine"],
        "accuracy": {k: {kk: v[kk] for kk in keys} for k, v in metrics.items()},
        "confusion_exposure": {k: v["confusion_exposure"] for k, v in metrics.items()},
        "confusion_exposure_mean_log": {k: v["confusion_exposure_mean_log"]
                                        for k, v in metrics.items()},
        "confusion_ccd": {k: v["confusion_ccd"] for k, v in metrics.items()},
        "correct_by_exptime": {k: _by_exptime(v["test_exposures"], exptime)
                               for k, v in metrics.items()},
        "combiner": {k: v["combiner"] for k, v in metrics.items()},
        # per held-out exposure: id, EXPTIME (s), true and predicted class index (CLASSES order)
        "test_exposures": {k: [{"expid": e, "exptime": exptime.get(e), "true": t, "pred": q}
                               for e, t, q in zip(v["test_exposures"]["expid"],
                                                  v["test_exposures"]["true"],
                                                  v["test_exposures"]["pred"])]
                           for k, v in metrics.items()},
        "classes": list(CLASSES),
        "stellarity": res["stellarity_metrics"],
        "classical_vs_M3": g.classical_vs_model(test, qa["grade"]["p_good_min"])
        .to_dict(orient="records"),
        "status_counts": grades["status"].value_counts().to_dict(),
    }


def evaluate(args) -> int:
    cfg = evaluate_config(args)
    qa, seed = g.qa_settings(cfg), int(cfg["seed"])
    log = setup(args.log, qa["threads"], seed, tensorflow=not args.prepare_only)
    t0 = time.time()
    cache = Path(args.workdir) / "prepared.pkl"
    if args.from_cache:
        with open(cache, "rb") as fh:
            res = pickle.load(fh)  # noqa: S301 - our own file, written by --prepare-only
        if res["seed"] != seed or res["qa"]["simulate"] != qa["simulate"]:
            log.error("%s was prepared with other options (seed %s)", cache, res["seed"])
            return 1
        res["qa"] = qa
        log.info("loaded %s (prepared in %.0f s)", cache, res["prepare_s"])
    else:
        res = prepare(qa, seed, args.workdir, log.info)
        res.update(seed=seed, prepare_s=time.time() - t0)
        with open(cache, "wb") as fh:
            pickle.dump(res, fh)
        log.info("data steps done in %.0f s; cached in %s", res["prepare_s"], cache)
        if args.prepare_only:
            return 0
    t1 = time.time()
    res = train_and_grade(res, seed, log.info)
    out = {**summary(res, seed), "prepare_s": round(res["prepare_s"], 1),
           "models_s": round(time.time() - t1, 1), "wall_s": round(time.time() - t0, 1)}
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0
