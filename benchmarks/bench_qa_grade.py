"""Benchmark: wall time to grade one full-size MegaCam exposure (36 CCDs of 2048x4612).

Renders one synthetic exposure (timed separately, not part of grading), then grades it
with :class:`catclean.qa.grading.Grader` in one process limited to 2 cores and prints
the seconds per step: read + extraction (sep on every CCD), features (stellarity +
SOM inputs), SOM mapping, stamps (Input-1/Input-2) and model inference (M3).

Trained artefacts are taken from ``--artefacts`` (default: results/synthetic/qa/models,
written by the default workflow run); when absent, small stand-ins are fitted on the
exposure itself (stellarity on its truth, SOM on its features, an untrained M3): the
timing does not depend on the weights.

Baseline: the paper's target of the stage, <= 60 s per exposure on 2 cores.

The exposure is sized by the ``paper`` preset of the config (36 CCDs of 4612x2048);
``--n-ccd`` / ``--shape`` override it, the other settings are the repository config's.

Run:  .venv/bin/python benchmarks/bench_qa_grade.py [--n-ccd 36] [--threads 2]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--n-ccd", type=int, default=None, help="default: the paper preset's")
ap.add_argument("--shape", type=int, nargs=2, default=None, help="default: the paper preset's")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--label", default="Good")
ap.add_argument("--artefacts", default="results/synthetic/qa/models")
ap.add_argument("--workdir", default=None)
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > args.threads:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from catclean.config import default_config  # noqa: E402
from catclean.qa.extract import ExtractConfig, process_exposure  # noqa: E402
from catclean.qa.features import som_features  # noqa: E402
from catclean.qa.grading import Grader, qa_settings  # noqa: E402
from catclean.qa.models import ModelConfig, build_model  # noqa: E402
from catclean.qa.simulate import SimConfig, make_exposure  # noqa: E402
from catclean.qa.som import BatchSOM, cluster_codebook  # noqa: E402
from catclean.qa.stellarity import Stellarity  # noqa: E402
from catclean.runtime import setup_tensorflow  # noqa: E402

setup_tensorflow(args.threads, 0)
config = default_config()
settings = qa_settings(config)
paper = qa_settings(default_config({"qa": {"preset": "paper"}}))["simulate"]
args.n_ccd = args.n_ccd or paper["n_ccd"]
args.shape = args.shape or paper["ccd_shape"]
work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_qa_"))
cfg = SimConfig.from_dict({**settings["simulate"], "n_ccd": args.n_ccd,
                           "ccd_shape": args.shape, "p_dead_ccd": 0.0,
                           "short_exposure_fraction": 0.0})
row = {"label": args.label, "split": "test", "defect": "", "expid": 1021182, "index": 0}
path = work / "1021182p.fits"
t0 = time.perf_counter()
rec, truth = make_exposure(row, path, cfg, seed=20240607)
t_render = time.perf_counter() - t0
size_mb = path.stat().st_size / 2**20
print(f"render (not part of grading): {t_render:.1f} s for {args.n_ccd} CCDs of "
      f"{args.shape[1]}x{args.shape[0]} ({size_mb:.0f} MiB, {len(truth['x'])} truth sources)")

art = ROOT / args.artefacts
if (art / "M3.keras").exists() and (art / "som.npz").exists() and (art / "stellarity.pkl").exists():
    stel_p, som_p, m3_p = art / "stellarity.pkl", art / "som.npz", art / "M3.keras"
    print(f"artefacts: {art}")
else:
    print("artefacts: none found; fitting stand-ins on this exposure (timing unaffected)")
    _, src = process_exposure(path, ExtractConfig.from_dict(settings["extract"]),
                              cfg.pixel_scale, truth=pd.DataFrame(truth))
    st = Stellarity(seed=0).fit(src, src["is_star"].clip(0, 1).to_numpy())
    st.save(work / "stellarity.pkl")
    s = settings["som"]
    som = BatchSOM(s["rows"], s["cols"], s["sigma0"], s["sigma_end"], 10, s["chunk"], 0)
    som.fit(som_features(src, st.predict(src)))
    som.save(work / "som.npz", unit_cluster=cluster_codebook(som.weights, s["n_clusters"], 0))
    build_model("M3", s["n_clusters"], settings["stamp"],
                ModelConfig.from_dict(settings["models"])).save(work / "M3.keras")
    stel_p, som_p, m3_p = work / "stellarity.pkl", work / "som.npz", work / "M3.keras"

# the per-exposure rule the pipeline fitted (metrics/models.json next to the models)
rules = art.parent / "metrics" / "models.json"
grader = Grader(stel_p, som_p, m3_p, {**settings, "grade": {**settings["grade"], "model": "M3"}},
                config["seed"], combiner=rules if rules.exists() else None)
t0 = time.perf_counter()
grader.model.predict([np.zeros((1, grader.n_clusters, grader.stamp, grader.stamp, 1), np.float32),
                      np.zeros((1, 2 * grader.n_clusters), np.float32)], verbose=0)
print(f"model load + TF warm-up (once per job, not per exposure): "
      f"{time.perf_counter() - t0:.2f} s")
t0 = time.perf_counter()
out, steps = grader.grade(path)
total = time.perf_counter() - t0
print("grading steps [s]: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
print(f"GRADE one exposure: {total:.1f} s on {args.threads} cores "
      f"(target <= 60 s; ratio to target {total / 60:.2f}); status={out['status']} "
      f"pred={out['pred_class']} P(Good)={out['p_good']:.3f} n_ccd_used={out['n_ccd_used']}")
