"""`catclean compare`: two runs' products compared by content, wall-clock ignored."""

from __future__ import annotations

import json
import time

import pandas as pd

from catclean.cli import main
from catclean.compare import compare_runs
from catclean.io import read_metadata, write_parquet


def _run(root, p_shred, seconds):
    df = pd.DataFrame({"source_id": ["a", "b"], "p_shred": p_shred})
    write_parquet(df, root / "catalog" / "survey=sdss" / "hpx=1" / "part-0.parquet",
                  prov={"seed": 1})
    (root / "metrics.json").write_text(json.dumps({"auc": 0.9, "train_seconds": seconds,
                                                   "folds": [{"epochs": 3, "seconds": seconds}]}))
    (root / "logs").mkdir(exist_ok=True)
    (root / "logs" / "x.log").write_text(f"took {seconds}")


def test_same_content_with_other_wallclock_is_identical(tmp_path, capsys):
    _run(tmp_path / "a", [0.1, 0.9], 12.0)
    time.sleep(1.1)  # another written_utc in the Parquet metadata
    _run(tmp_path / "b", [0.1, 0.9], 99.0)
    part = "catalog/survey=sdss/hpx=1/part-0.parquet"
    assert (read_metadata(tmp_path / "a" / part)["wallclock"]
            != read_metadata(tmp_path / "b" / part)["wallclock"])
    res = compare_runs(tmp_path / "a", tmp_path / "b")
    assert res.identical and sorted(res.same) == [part, "metrics.json"]
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "same content" in capsys.readouterr().out


def test_a_changed_value_a_missing_file_and_extra_columns_are_reported(tmp_path):
    _run(tmp_path / "a", [0.1, 0.9], 1.0)
    _run(tmp_path / "b", [0.1, 0.9004], 1.0)
    res = compare_runs(tmp_path / "a", tmp_path / "b")
    part = "catalog/survey=sdss/hpx=1/part-0.parquet"
    assert not res.identical and "p_shred" in res.differ[part] and "0.0004" in res.differ[part]
    (tmp_path / "b" / "metrics.json").unlink()
    assert compare_runs(tmp_path / "a", tmp_path / "b").only_a == ["metrics.json"]
    # a table with a new stage's column: different, unless only common columns count
    _run(tmp_path / "c", [0.1, 0.9], 1.0)
    df = pd.DataFrame({"source_id": ["a", "b"], "p_shred": [0.1, 0.9], "morph_class": ["S", "E"]})
    write_parquet(df, tmp_path / "c" / part, prov={"seed": 1})
    assert part in compare_runs(tmp_path / "a", tmp_path / "c").differ
    res = compare_runs(tmp_path / "a", tmp_path / "c", common_columns=True)
    assert res.identical and res.extra_columns[part] == ["morph_class"]
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 1


def test_provenance_counts_unless_content_only(tmp_path):
    _run(tmp_path / "a", [0.1, 0.9], 1.0)
    _run(tmp_path / "b", [0.1, 0.9], 1.0)
    df = pd.DataFrame({"source_id": ["a", "b"], "p_shred": [0.1, 0.9]})
    part = "catalog/survey=sdss/hpx=1/part-0.parquet"
    write_parquet(df, tmp_path / "b" / part, prov={"seed": 2})
    why = compare_runs(tmp_path / "a", tmp_path / "b").differ[part]
    assert "metadata differs" in why and "catclean.provenance" in why
    assert compare_runs(tmp_path / "a", tmp_path / "b", provenance=False).identical
    assert main(["compare", "--content-only", str(tmp_path / "a"), str(tmp_path / "b")]) == 0


def test_a_missing_run_directory_is_named(tmp_path, capsys):
    _run(tmp_path / "a", [0.1, 0.9], 1.0)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "nope")]) == 2
    assert f"run directory not found: {tmp_path / 'nope'}" in capsys.readouterr().err
