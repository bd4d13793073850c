"""Issue 15, item 1: the same config gives the same Parquet, model columns included.

Two uninterrupted all-stage tiny runs (shreds, blends, QA, cutouts, SOM, morphology: every
job that trains or scores a model runs with catclean.runtime's seeds, thread settings and
TensorFlow op determinism) give byte-identical content in every Parquet file they write,
every column compared; only the wall-clock provenance key may differ."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from .runs import RUN, assert_same_results, prepare, run

pytestmark = pytest.mark.slow

#: model outputs that must be present and not all null for the comparison to mean much:
#: the shred CNN, the SOM annotation, blend2flux (the QA CNN's p_* are checked below)
MODEL_COLUMNS = ("p_shred", "p_shred_som", "blend_flux_r_blend2flux")
#: present, but null at these sizes: 2 optimiser steps give a Mask R-CNN that detects
#: nothing, so its scores are compared only as nulls (its Parquet files still are)
NULL_MODEL_COLUMNS = ("morph_score", "in_host_mask")


def test_two_runs_give_identical_parquet_including_model_columns(reference_run, tmp_path):
    work = prepare(tmp_path / "again")
    proc = run(work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    again = work / "results" / RUN

    catalog = ds.dataset(reference_run / "catalog", partitioning="hive").to_table()
    for name in MODEL_COLUMNS:
        assert name in catalog.column_names, name
        assert catalog.column(name).null_count < catalog.num_rows, name
    assert set(NULL_MODEL_COLUMNS) <= set(catalog.column_names)
    grades = ds.dataset(reference_run / "qa" / "grades.parquet").to_table()
    assert grades.num_rows > 0 and grades.column("p_good").null_count < grades.num_rows

    assert_same_results(reference_run, again)
