"""Helpers of the reliability suite: the tiniest all-stage workflow config, a Snakemake
runner that can be killed as a whole process group, and Parquet content comparison."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import REPO, tiny_overrides

from catclean.compare import compare_runs

RUN = "rel"
#: the final products compared between runs: the catalog (every model column of shreds,
#: blends, SOM and morphology joined per source) and the QA grades (the QA CNN's scores)
TARGETS = (f"results/{RUN}/catalog/_SUCCESS", f"results/{RUN}/qa/grades.parquet")


def all_stage_overrides(run_name: str = RUN) -> dict:
    """`tiny_overrides` with every stage on (shreds, blends, QA, cutouts, SOM,
    morphology) at the smallest sizes that still train, over one survey."""
    over = tiny_overrides(run_name)
    over["surveys"] = {"sdss": {"enabled": False}, "ps1": {"enabled": False}}
    over.update({
        "cutouts": {"enabled": True},
        "shreds": {"enabled": True, "threads": 2,
                   "training": {"n_hosts": 3, "field_max_pix": 640, "galaxy_fraction": 0.5},
                   "presets": {"small": {"max_epochs": 2, "patience": 1, "folds": 2,
                                         "run_folds": 1, "dense": [16, 8], "width": 0.125}}},
        "blends": {"enabled": True, "threads": 2, "presets": {"small": {
            "n_galaxies": 20, "n_train": 40, "n_test": 12, "b2f_filters": 4, "unet_depth": 2,
            "unet_filters": 4, "b2m2f_filters": 4, "epochs": 1, "unet_epochs": 1,
            "warmup_epochs": 0, "e2e_epochs": 1, "patience": 1}}},
        "qa": {"enabled": True, "threads": 2, "presets": {"small": {
            "simulate": {"n_ccd": 2, "ccd_shape": [256, 256], "n_train_per_class": 3,
                         "n_test_per_class": 1, "n_batches": 1,
                         "short_exposure_fraction_train": None},
            "som": {"rows": 3, "cols": 3, "n_iter": 3, "n_clusters": 4},
            "models": {"epochs": 2, "patience": 1}}}},
        "som": {"enabled": True, "threads": 2, "presets": {"small": {
            "rows": 3, "cols": 3, "image_dim": 16, "max_train_images": 50,
            "schedule": [{"sigma": 1.0, "damping": 0.3, "numrot": 4, "epochs": 1}]}}},
        "morphology": {"enabled": True, "threads": 2, "n_fields": 12, "train_steps": 2,
                       "presets": {"tiny": {"image_size": 64,
                                            "stages": [["heads", 1], ["all", 1]]}}},
    })
    return over


def snakemake_cmd(workdir: Path, targets=TARGETS, extra=()) -> list[str]:
    """The Snakemake command line of a run in `workdir` (overrides.yaml there)."""
    # targets first: --configfile takes every following word
    return [sys.executable, "-m", "snakemake", *targets, "--cores", "2",
            "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *extra,
            "--configfile", str(REPO / "config" / "config.yaml"),
            str(workdir / "overrides.yaml")]


def _env() -> dict:
    # rule scripts import catclean from this checkout, not from an installed copy
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"),
                                                      env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"  # job starts reach the log at once (the crash test)
    return env


def prepare(workdir: Path, overrides: dict | None = None) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "overrides.yaml").write_text(yaml.safe_dump(overrides or all_stage_overrides()))
    return workdir


def run(workdir: Path, targets=TARGETS, extra=(), timeout=1800) -> subprocess.CompletedProcess:
    """Run Snakemake to completion in `workdir`."""
    return subprocess.run(snakemake_cmd(workdir, targets, extra), capture_output=True,
                          text=True, timeout=timeout, env=_env())


def start(workdir: Path, log: Path, targets=TARGETS) -> subprocess.Popen:
    """Start Snakemake in its own process group (so kill -9 reaches every job), output
    (stdout and stderr) into `log`."""
    fh = open(log, "w")  # noqa: SIM115 - closed by kill_group
    proc = subprocess.Popen(snakemake_cmd(workdir, targets), stdout=fh,
                            stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    proc.log_handle = fh
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 of the whole run: Snakemake and every job it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)
    proc.log_handle.close()


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None,
             poll: float = 0.1) -> bool:
    """Poll `predicate` until true (True), the timeout or the process's end (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(predicate())
        time.sleep(poll)
    return False


def assert_same_results(reference: Path, other: Path) -> None:
    """Every Parquet file of `reference` exists in `other` with identical content and
    provenance (`catclean compare`, wall-clock metadata aside); no file on one side only."""
    res = compare_runs(reference, other, globs=("**/*.parquet",))
    assert res.same, reference
    assert res.identical, res.report()
