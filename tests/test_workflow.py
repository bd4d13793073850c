"""The whole catalog workflow through the Snakemake CLI on a tiny config in a temporary
directory: row balance through every stage, hive-partitioned output readable by
pyarrow.dataset and DuckDB, flagged hosts kept. (Reproducible content: two all-stage runs
compared file by file in tests/reliability/test_reproducible.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import SHARED, tiny_overrides

pytestmark = pytest.mark.slow


def run_workflow(repo: Path, workdir: Path, overrides: dict, target: str | None = None,
                 extra=()) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    over = workdir / "overrides.yaml"
    over.write_text(yaml.safe_dump(overrides))
    # targets first: --configfile takes every following word
    cmd = [sys.executable, "-m", "snakemake", *([target] if target else []), "--cores", "2",
           "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir), *extra,
           "--configfile", str(repo / "config" / "config.yaml"), str(over)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def tiny_run(repo, tmp_path_factory):
    work = tmp_path_factory.mktemp("wf1")
    proc = run_workflow(repo, work, tiny_overrides("tiny"), "results/tiny/catalog/_SUCCESS")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work / "results" / "tiny"


def _rows(paths):
    return sum(pq.read_metadata(p).num_rows for p in paths)


def test_rows_balance_through_every_stage(tiny_run):
    for survey_dir in sorted((tiny_run / "raw").iterdir()):
        survey = survey_dir.name
        raw = sorted(survey_dir.glob("*/hpx=*.parquet"))
        norm = sorted((tiny_run / "normalized" / survey).glob("*/hpx=*.parquet"))
        cuts = sorted((tiny_run / "cuts" / survey).glob("*/hpx=*.parquet"))
        cat = sorted((tiny_run / "catalog" / f"survey={survey}").glob("hpx=*/part-0.parquet"))
        assert len(raw) == len(norm) == len(cuts) == len(cat) >= 1
        n = _rows(raw)
        assert n > 0
        assert _rows(norm) == _rows(cuts) == _rows(cat) == n, survey
        # and the cut flow starts from every row
        flow = (tiny_run / "cutflow" / f"{survey}.csv").read_text().splitlines()
        assert flow[1].split(",")[-1] == str(n)


def test_hive_catalog_reads_with_pyarrow_and_duckdb(tiny_run):
    root = tiny_run / "catalog"
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert {"survey", "hpx", "source_id", "passes_cuts", "cut_r_max"} <= set(table.column_names)
    df = table.to_pandas()
    assert set(df["survey"].astype(str)) == {"legacy", "sdss", "ps1"}
    assert df["source_id"].is_unique
    # partition values agree with each source's own position
    from astropy import units as u
    from astropy_healpix import HEALPix

    hp = HEALPix(nside=32, order="nested")
    pix = hp.lonlat_to_healpix(df["ra"].to_numpy() * u.deg, df["dec"].to_numpy() * u.deg)
    assert (pix == df["hpx"].astype(int).to_numpy()).all()
    con = duckdb.connect()
    res = con.execute(
        f"SELECT survey, count(*) AS n, sum(CASE WHEN passes_cuts THEN 1 ELSE 0 END) AS k "
        f"FROM read_parquet('{root}/*/*/*.parquet', hive_partitioning=true) "
        f"GROUP BY survey ORDER BY survey").fetchall()
    assert [r[0] for r in res] == ["legacy", "ps1", "sdss"]
    assert sum(r[1] for r in res) == len(df)
    # units and provenance travel in the metadata
    part = next(root.glob("survey=legacy/hpx=*/part-0.parquet"))
    schema = pq.read_schema(part)
    assert schema.field("mag_r").metadata[b"unit"] == b"mag"
    assert b"catclean.provenance" in schema.metadata


def test_flagged_host_is_kept(tiny_run):
    hosts = pq.read_table(tiny_run / "hosts" / "hosts.parquet").to_pandas()
    assert len(hosts) == 3
    flagged = hosts[hosts.host_status == "flagged"]
    assert len(flagged) == 1 and "NaN" in flagged.host_reason.iloc[0]


def test_truth_labels_reach_the_catalog(tiny_run):
    df = ds.dataset(tiny_run / "catalog", partitioning="hive").to_table().to_pandas()
    labels = set(df["truth_label"].dropna().astype(str))
    assert {"galaxy", "star"} <= labels
    assert df["host_dist_kpc"].max() <= 100.0 * 1.05


def test_missing_input_is_a_clear_error(repo, tiny_run, tmp_path):
    # delete a raw partition behind Snakemake's back and force its consumer to run
    work = tiny_run.parent.parent
    raw = next((tiny_run / "raw" / "sdss").glob("*/hpx=*.parquet"))
    target = str(raw).replace("/raw/", "/normalized/")
    raw.unlink()
    Path(target).unlink()
    proc = run_workflow(repo, work, tiny_overrides("tiny"), target,
                        extra=["--allowed-rules", "normalize"])
    assert proc.returncode != 0
    assert raw.name in proc.stdout + proc.stderr


REAL_CUTOUTS = SHARED / "real" / "legacy_dr9_grz_jpeg"


@pytest.mark.skipif(not REAL_CUTOUTS.is_dir(), reason=f"{REAL_CUTOUTS} is absent")
def test_realism_rule_reports_two_sample_aucs(repo, tmp_path):
    """Rule shreds_realism: the run's (realistic) training cutouts against the real
    cutouts, folds grouped by training field, with the histogram and gallery figures."""
    import json

    over = tiny_overrides("realism")
    over["shreds"] = {"enabled": True, "threads": 2,
                      "training": {"n_hosts": 8, "field_max_pix": 800, "realism": "viewer"},
                      "real_check": {"images": str(REAL_CUTOUTS), "realism_methods": ["trees"],
                                     "realism_n": 20}}
    proc = run_workflow(repo, tmp_path, over, "results/realism/shreds/_model/realism.json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads((tmp_path / "results/realism/shreds/_model/realism.json").read_text())
    trees = res["trees"]
    assert trees["grouped"] and trees["n_b"] == len(list(REAL_CUTOUTS.glob("*.png")))
    assert 20 <= trees["n_a"] and 0.0 <= trees["auc"] <= 1.0 and len(trees["fold_aucs"]) == 5
    assert "cnn" not in res
    # the eye labels of data/real_labels name every real cutout: both classes measured
    by_class = res["trees_by_class"]
    assert set(by_class) == {"galaxy", "shred"}, by_class
    assert by_class["galaxy"]["n_a"] + by_class["shred"]["n_a"] == trees["n_a"]
    assert by_class["galaxy"]["n_b"] + by_class["shred"]["n_b"] < trees["n_b"]  # unsure out
    for png in ("shreds_realism_statistics.png", "shreds_realism_gallery.png",
                "shreds_realism_extremes.png"):
        assert (tmp_path / "results/realism/report" / png).stat().st_size > 10_000


def test_realism_rule_against_the_runs_own_cutouts(repo, tmp_path):
    """`realism_against: run` compares the training sky with the run's own candidate
    cutouts (a live run's real sky; here the synthetic science sky): only ok cutouts of
    rows that pass the cuts are drawn."""
    import json

    import numpy as np

    over = tiny_overrides("realism_run")
    over["cutouts"] = {"enabled": True}
    over["shreds"] = {"enabled": True, "threads": 2,
                      "training": {"n_hosts": 6, "field_max_pix": 800, "realism": "viewer"},
                      "real_check": {"realism_against": "run", "realism_methods": ["trees"],
                                     "realism_n": 20}}
    proc = run_workflow(repo, tmp_path, over, "results/realism_run/shreds/_model/realism.json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = tmp_path / "results/realism_run"
    cuts = pd.concat([pd.read_parquet(p) for p in run.glob("cuts/**/*.parquet")])
    passing = set(cuts.loc[cuts["passes_cuts"], "source_id"])
    n_ok = 0
    for index in run.glob("cutouts/*/*/*/rgb/index.parquet"):
        idx = pd.read_parquet(index)
        n_ok += int(((idx["cutout_status"] == "ok") & idx["source_id"].isin(passing)).sum())
    res = json.loads((run / "shreds/_model/realism.json").read_text())
    assert res["real"] == f"{min(n_ok, 40)} cutouts of the run"
    assert res["trees"]["n_b"] == min(n_ok, 40) >= 5 and np.isfinite(res["trees"]["auc"])
