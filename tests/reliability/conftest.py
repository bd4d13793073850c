"""Reliability suite fixtures: the uninterrupted all-stage reference run, session-scoped,
so the reproducibility and crash tests compare against the same run (one run, not two)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .runs import RUN, prepare, run


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory) -> Path:
    """One uninterrupted all-stage tiny run; returns its `results/<run>` directory."""
    work = prepare(tmp_path_factory.mktemp("reference"))
    proc = run(work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work / "results" / RUN
