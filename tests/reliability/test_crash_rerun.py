"""Issue 15, item 2: a killed job is always rerun, and a killed run resumes to the same output.

The run is killed with SIGKILL as a whole process group (Snakemake and every job), first
while a `render_field` job runs, then at seeded-random job starts; each time `--unlock`
and start again; the last run goes to completion. Checks:

- the killed `render_field` is rerun, even in the worst case for Snakemake: its outputs
  exist under their final names (a kill after the atomic rename, before Snakemake records
  the job). Snakemake 9 checks incomplete markers only for jobs in the DAG before the
  `hosts` checkpoint is resolved, so without `catclean.incomplete` this job was skipped;
- every Parquet file of the resumed run equals the uninterrupted reference run's.
"""

from __future__ import annotations

import random
import re
import shutil
import time
from pathlib import Path

import pytest

from catclean.incomplete import drop_incomplete_outputs, incomplete_outputs

from .runs import (
    RUN,
    assert_same_results,
    kill_group,
    prepare,
    run,
    start,
    wait_for,
)

SEED = 15
RANDOM_KILLS = 3  # plus the render_field kill: 4 kills in all (at most 5)
JOB_START = re.compile(r"^\s*(?:local)?rule (\w+):", re.M)


def _job_starts(log: Path) -> list[str]:
    return JOB_START.findall(log.read_text()) if log.exists() else []


def _unlock(work: Path) -> None:
    proc = run(work, extra=["--unlock"], timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def crashed(reference_run, tmp_path_factory):
    """The kill / unlock / resume sequence; returns what the tests check."""
    rng = random.Random(SEED)
    work = prepare(tmp_path_factory.mktemp("crash"))
    results = work / "results" / RUN
    logs, killed = [], []

    # 1. kill while render_field runs
    log = work / "attempt0.log"
    proc = start(work, log)
    assert wait_for(lambda: "render_field" in _job_starts(log), 120, proc), log.read_text()
    # a field renders in ~3 s on an idle machine: kill well inside that
    time.sleep(rng.uniform(0.2, 1.0))
    kill_group(proc)
    logs.append(log)
    marked = incomplete_outputs(work / ".snakemake")
    fields = [m for m in marked if "/fields/" in m]
    assert fields, marked  # render_field was running when killed
    # the worst case: outputs complete under their final names, job not recorded
    for m in fields:
        if not (work / m).exists():
            shutil.copyfile(reference_run / Path(m).relative_to(f"results/{RUN}"), work / m)
    killed.append(marked)
    _unlock(work)
    dry = run(work, extra=["-n"], timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]

    # 2. kill at seeded-random job starts (each attempt well under a minute)
    for i in range(1, RANDOM_KILLS + 1):
        log = work / f"attempt{i}.log"
        proc = start(work, log)
        nth = rng.randint(1, 3)
        finished = not wait_for(lambda log=log, nth=nth: len(_job_starts(log)) >= nth, 50, proc)
        if not finished:
            time.sleep(rng.uniform(0.0, 4.0))
        kill_group(proc)
        logs.append(log)
        killed.append(incomplete_outputs(work / ".snakemake"))
        _unlock(work)

    # 3. resume to completion
    final = run(work)
    assert final.returncode == 0, final.stderr[-4000:]
    return {"results": results, "fields": fields, "dry": dry.stdout + dry.stderr,
            "logs": [p.read_text() for p in logs] + [final.stdout + final.stderr],
            "killed": killed}


@pytest.mark.slow
def test_killed_render_field_is_rerun(crashed):
    hosts = {Path(m).name.split("_")[0].removesuffix(".fits") for m in crashed["fields"]}
    # the dry run after --unlock schedules it ...
    assert "render_field" in crashed["dry"], crashed["dry"][-3000:]
    # ... and a later attempt runs it again for that host
    later = "\n".join(crashed["logs"][1:])
    for host in hosts:
        assert re.search(rf"rule render_field:(?:\n .*)*?\n\s+output: \S+/{host}\.fits", later), host


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(crashed, reference_run):
    assert sum(bool(k) for k in crashed["killed"]) >= 2  # kills really landed mid-job
    assert_same_results(reference_run, crashed["results"])


def test_markers_decode_and_only_killed_outputs_go(tmp_path, monkeypatch):
    """Snakemake's own marker encoding (long paths split into `@` chunks) round-trips; only
    marked outputs inside the run's results go, and nothing while a run holds a lock."""
    from snakemake.persistence.file import FilePersistence

    monkeypatch.chdir(tmp_path)
    state = FilePersistence(path=tmp_path / ".snakemake")
    deep = "results/r/" + "/".join(["d" * 60] * 5) + "/hpx=1.parquet"  # > 255 b64 chars
    keep = tmp_path / "results/r/done.parquet"
    for rel in ("results/r/a.fits", deep, "results/other/b.parquet", "results/r/cat"):
        state._mark_incomplete(rel, None)
    for rel in ("results/r/a.fits", deep, "results/other/b.parquet", "results/r/done.parquet"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("partial")
    (tmp_path / "results/r/cat/survey=x").mkdir(parents=True)  # a directory output
    (tmp_path / "results/r/.a.fits.abc.tmp").write_text("temp")
    assert incomplete_outputs(tmp_path / ".snakemake") == sorted(
        ["results/r/a.fits", deep, "results/other/b.parquet", "results/r/cat"])

    (tmp_path / ".snakemake/locks/0.input.lock").write_text("x")
    assert drop_incomplete_outputs("results/r") == []  # another run is active
    (tmp_path / ".snakemake/locks/0.input.lock").unlink()
    removed = drop_incomplete_outputs("results/r")
    assert sorted(map(str, removed)) == sorted(["results/r/a.fits", deep, "results/r/cat"])
    assert not (tmp_path / "results/r/cat").exists()
    assert not (tmp_path / "results/r/.a.fits.abc.tmp").exists()
    assert keep.exists() and (tmp_path / "results/other/b.parquet").exists()
