"""Issue 10, point 5: each rule's params name only the keys its output depends on, so
Snakemake's params trigger reruns exactly the affected jobs.

On a copy of the finished all-stage reference run (outputs and Snakemake's metadata),
dry runs with one changed key list the jobs Snakemake would rerun:
- the unchanged config reruns nothing (params are stable between parses);
- a key read only by the blends stage reruns blends jobs and what consumes their output
  (the assembled catalog), and no catalog, shred, SOM, morphology or QA job;
- a shreds training key reruns the shred CNN and its consumers, and no catalog, blends or
  QA job, nor the shred training set (which that key does not change).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from catclean.config import deep_merge

from .runs import all_stage_overrides, prepare, run

pytestmark = pytest.mark.slow

RULES_DIR = Path(__file__).resolve().parents[2] / "workflow" / "rules"
RULE = re.compile(r"^\s*(?:rule|checkpoint) (\w+):", re.M)
#: the "Job stats" table of a dry run: "<rule>  <count>" lines
JOB_LINE = re.compile(r"^(\w+)\s+(\d+)$", re.M)


def rules_of(*files: str) -> set[str]:
    """Names of the rules defined in `workflow/rules/<file>.smk`."""
    return {name for f in files for name in RULE.findall((RULES_DIR / f"{f}.smk").read_text())}


CATALOG = rules_of("hosts", "catalogs", "cuts", "cutouts")
BLENDS = rules_of("blends")
SHREDS = rules_of("shreds")
QA = rules_of("qa")
#: consumers of every stage's columns or products
DOWNSTREAM = rules_of("assemble", "report")


@pytest.fixture(scope="module")
def finished(reference_run, tmp_path_factory) -> Path:
    """A copy of the reference run's working directory (results and .snakemake
    metadata, modification times kept), so dry runs here cannot disturb other tests."""
    work = tmp_path_factory.mktemp("params") / "work"
    shutil.copytree(reference_run.parent.parent, work, symlinks=True)
    return work


def rerun_jobs(work: Path, change: dict) -> dict[str, int]:
    """Rule -> job count of a dry run with `change` merged into the overrides."""
    prepare(work, deep_merge(all_stage_overrides(), change))
    proc = run(work, extra=["-n", "--rerun-triggers", "mtime", "params", "input", "code"],
               timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    stats = out[out.index("Job stats:"):]
    jobs = {name: int(n) for name, n in JOB_LINE.findall(stats) if name not in ("total", "job")}
    assert jobs, out[-3000:]
    return jobs


def test_unchanged_config_reruns_nothing(finished):
    assert rerun_jobs(finished, {}) == {}


def test_a_blends_key_reruns_only_blends_and_its_consumers(finished):
    jobs = set(rerun_jobs(finished, {"blends": {"presets": {"small": {"epochs": 2}}}}))
    assert {"train_blend_models", "deblend"} <= jobs
    assert "make_blends" not in jobs  # the simulation does not depend on epochs
    assert jobs <= BLENDS | DOWNSTREAM, jobs - BLENDS - DOWNSTREAM
    assert not jobs & (CATALOG | SHREDS | QA)


def test_a_shreds_key_reruns_only_the_shred_cnn_and_its_consumers(finished):
    jobs = set(rerun_jobs(finished, {"shreds": {"presets": {"small": {"max_epochs": 3}}}}))
    assert {"train_shred_cnn", "score_shreds"} <= jobs
    assert "make_shred_training_set" not in jobs
    assert not jobs & (CATALOG | BLENDS | QA), jobs & (CATALOG | BLENDS | QA)
