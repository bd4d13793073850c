"""Benchmark: wall time and memory to grade one full-size MegaCam exposure (36 CCDs of
2048x4612), serial against parallel CCD extraction.

Renders one synthetic exposure (timed separately, not part of grading) and copies its
first CCDs into smaller exposures (``--ccd-counts``, default 4, 12, 36). On each, in the
same run and the same process (limited to ``--threads`` cores):

* ``previous``: the serial extraction as it was (every CCD's pixels kept in memory for
  the stamps, as ``Grader`` did) -- the baseline;
* ``serial``: the streaming serial path (one CCD in memory at a time);
* ``parallel``: the CCDs extracted by a pool of ``--threads`` worker processes
  (:func:`catclean.qa.extract.ccd_pool`; sep holds the GIL, so threads would not help).

Each prints seconds and the peak memory while it ran: proportional set size (PSS, so pages
shared by the forked workers count once) of this process plus its workers, sampled every
100 ms, above the level before the step. The tables of serial and parallel are checked to
be identical. Then :class:`catclean.qa.grading.Grader` grades the full exposure with the
parallel extraction and prints the seconds per step: extraction, features (stellarity +
SOM inputs), SOM mapping, stamps (Input-1/Input-2, read lazily) and inference (M3).

Trained artefacts are taken from ``--artefacts`` (default: results/synthetic/qa/models,
written by the default workflow run); when absent, small stand-ins are fitted on the
exposure itself (stellarity on its truth, SOM on its features, an untrained M3): the
timing does not depend on the weights.

Targets (issue 16): <= 8 s per full exposure on 2 cores, peak memory flat in the number
of CCDs. The machine may be shared: the load average is printed, and the ratio
previous / parallel is the figure that carries over.

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
ap.add_argument("--ccd-counts", type=int, nargs="+", default=[4, 12, 36])
ap.add_argument("--label", default="Good")
ap.add_argument("--precision", default="auto", help="qa.grade.inference.precision")
ap.add_argument("--inference", default=None,
                help="the model's inference card directory (qa_prepare_inference)")
ap.add_argument("--artefacts", default="results/synthetic/qa/models")
ap.add_argument("--workdir", default=None)
ap.add_argument("--reuse", action="store_true",
                help="grade the exposure already rendered in --workdir (same settings)")
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > args.threads:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
ROOT = Path(__file__).resolve().parents[1]

import threading  # noqa: E402

import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from catclean.config import default_config  # noqa: E402
from catclean.qa.extract import ExtractConfig, ccd_pool, process_exposure  # noqa: E402
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
truth_file = work / "truth.parquet"
if args.reuse and path.exists() and truth_file.exists():
    truth = pd.read_parquet(truth_file).to_dict("list")
else:
    rec, truth = make_exposure(row, path, cfg, seed=20240607)
    pd.DataFrame(truth).to_parquet(truth_file)
t_render = time.perf_counter() - t0
size_mb = path.stat().st_size / 2**20
print(f"render (not part of grading): {t_render:.1f} s for {args.n_ccd} CCDs of "
      f"{args.shape[1]}x{args.shape[0]} ({size_mb:.0f} MiB, {len(truth['x'])} truth sources)")



def pss_mib(pids) -> float:
    """Sum of the proportional set sizes (MiB) of ``pids`` (shared pages counted once)."""
    tot = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                tot += next(int(ln.split()[1]) for ln in fh if ln.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return tot / 1024


def cpu_seconds(me) -> float:
    """User + system CPU seconds of ``me`` and its live children."""
    procs = [me] + me.children(recursive=True)
    return sum(sum(p.cpu_times()[:2]) for p in procs if p.is_running())


class PeakMemory:
    """Peak PSS (MiB) of this process and its children while the block runs, and the
    CPU seconds they used (``cpu``)."""

    def __enter__(self):
        self.me = psutil.Process()
        self.cpu0 = cpu_seconds(self.me)
        self.base = self.now()
        self.peak, self._stop = self.base, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def now(self):
        return pss_mib([self.me.pid] + [c.pid for c in self.me.children(recursive=True)])

    def _run(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self.now())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.now())
        self.cpu = cpu_seconds(self.me) - self.cpu0
        return False


def subset(src, n, dst):
    """Copy the primary HDU and the first ``n`` CCDs of ``src`` into ``dst``."""
    from astropy.io import fits

    with fits.open(src, lazy_load_hdus=True) as h:
        fits.HDUList([fits.PrimaryHDU(header=h[0].header)]
                     + [fits.ImageHDU(h[k].data, h[k].header) for k in range(1, n + 1)]
                     ).writeto(dst, overwrite=True)
    return dst


xcfg = ExtractConfig.from_dict(settings["extract"])
truth_df = pd.DataFrame(truth)
t0 = time.perf_counter()
pool = ccd_pool(args.threads, pixels=args.shape[0] * args.shape[1])
t_pool = time.perf_counter() - t0
print(f"extraction pool: {args.threads} worker processes started in {t_pool:.2f} s "
      f"(once per job, not per exposure)")
print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
full_src = None
for n in sorted(args.ccd_counts):
    p = path if n >= args.n_ccd else subset(path, n, work / f"sub{n}.fits")
    n = min(n, args.n_ccd)
    res = {}
    for mode in ("previous", "serial", "parallel"):
        kept: dict = {}
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            out = process_exposure(p, xcfg, cfg.pixel_scale, truth=truth_df,
                                   keep_data=kept if mode == "previous" else None,
                                   pool=pool if mode == "parallel" else None)
            dt = time.perf_counter() - t0
        del kept
        res[mode] = (out, dt, mem.peak - mem.base)
        print(f"EXTRACT {n:2d} CCDs {mode:8s}: {dt:6.2f} s ({dt / n:.2f} s/CCD; CPU "
              f"{mem.cpu:6.2f} s = {mem.cpu / n:.2f} s/CCD), peak memory "
              f"+{mem.peak - mem.base:5.0f} MiB above {mem.base:.0f} MiB (this process + "
              f"workers, PSS)")
    for a_, b_ in zip(res["serial"][0], res["parallel"][0]):
        pd.testing.assert_frame_equal(a_, b_)
    pd.testing.assert_frame_equal(res["previous"][0][1], res["parallel"][0][1])
    print(f"  {n} CCDs: parallel tables identical to serial ({len(res['serial'][0][1])} "
          f"sources); RATIO previous / parallel {res['previous'][1] / res['parallel'][1]:.2f}x")
    if n == args.n_ccd:
        full_src = res["serial"][0][1]
pool.shutdown()

art = ROOT / args.artefacts
if (art / "M3.keras").exists() and (art / "som.npz").exists() and (art / "stellarity.pkl").exists():
    stel_p, som_p, m3_p = art / "stellarity.pkl", art / "som.npz", art / "M3.keras"
    print(f"artefacts: {art}")
else:
    print("artefacts: none found; fitting stand-ins on this exposure (timing unaffected)")
    src = full_src if full_src is not None else process_exposure(
        path, xcfg, cfg.pixel_scale, truth=truth_df)[1]
    st = Stellarity(seed=0).fit(src, src["is_star"].clip(0, 1).to_numpy())
    st.save(work / "stellarity.pkl")
    s = settings["som"]
    som = BatchSOM.from_config(s, seed=0, n_iter=10)
    som.fit(som_features(src, st.predict(src)))
    som.save(work / "som.npz", unit_cluster=cluster_codebook(som.weights, s["n_clusters"], 0))
    build_model("M3", s["n_clusters"], settings["stamp"],
                ModelConfig.from_dict(settings["models"])).save(work / "M3.keras")
    stel_p, som_p, m3_p = work / "stellarity.pkl", work / "som.npz", work / "M3.keras"

# the per-exposure rule the pipeline fitted (metrics/models.json next to the models)
rules = art.parent / "metrics" / "models.json"
t_setup = time.perf_counter()
grader = Grader(stel_p, som_p, m3_p, {**settings, "grade": {**settings["grade"], "model": "M3"}},
                config["seed"], combiner=rules if rules.exists() else None,
                workers=args.threads, precision=args.precision,
                inference_dir=args.inference)
print(f"model: {grader.model.precision} ({grader.precision_reason}); Grader set-up "
      f"(pool, artefacts, compiled model traced; once per job, not per exposure) "
      f"{time.perf_counter() - t_setup:.2f} s")
# timed alone (the memory sampler reads /proc of every worker and costs CPU), then
# graded again under the sampler for the peak memory
t0 = time.perf_counter()
out, steps = grader.grade(path)
total = time.perf_counter() - t0
with PeakMemory() as mem:
    out2, _ = grader.grade(path)
assert out2["p_good"] == out["p_good"], "two gradings of one exposure differ"
grader.close()
print("grading steps [s]: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
print(f"GRADE one exposure ({args.n_ccd} CCDs): {total:.1f} s (CPU {mem.cpu:.1f} s) on "
      f"{args.threads} cores with "
      f"{args.threads} extraction workers (target <= 8 s; ratio to target {total / 8:.2f}); "
      f"peak memory +{mem.peak - mem.base:.0f} MiB; status={out['status']} "
      f"pred={out['pred_class']} P(Good)={out['p_good']:.3f} n_ccd_used={out['n_ccd_used']}")
print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
