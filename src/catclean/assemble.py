"""Assemble the final catalog: join every stage's columns, check that rows balance, and
write hive-partitioned Parquet (``survey=<s>/hpx=<p>/part-0.parquet``).

All surveys share one schema (common columns, every survey's prefixed native columns,
cut columns, stage columns) so ``pyarrow.dataset``, pandas, dask and DuckDB read the
whole catalog without custom code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .catalogs.schema import (
    COMMON_COLUMNS,
    COMMON_DTYPES,
    COMMON_UNITS,
    NATIVE_UNITS,
    all_native_prefixed,
    native_dtypes,
)
from .cuts import CUTS, cutflow
from .io import read_metadata, read_parquet, write_parquet

log = logging.getLogger(__name__)

CUT_COLUMNS = [f"cut_{c.name}" for c in CUTS] + ["cut_host_radius", "passes_cuts",
                                                  "cut_reason"]
HOST_COLUMNS = ["host_nsaid", "host_z", "host_dist_kpc"]
PARTITION_KEYS = ("survey", "hpx")


class RowBalanceError(RuntimeError):
    """A stage lost, duplicated or invented rows."""


def _hpx_of(path: str) -> int:
    name = Path(path).name  # hpx=<n>.parquet
    return int(name.split("=")[1].split(".")[0])


def join_stage_columns(base: pd.DataFrame, stages: Mapping[str, pd.DataFrame],
                       where: str) -> pd.DataFrame:
    """Left-join stage tables on ``source_id``; each must hold exactly base's sources."""
    out = base
    ids = set(base["source_id"])
    for name, table in stages.items():
        if table["source_id"].duplicated().any():
            raise RowBalanceError(f"stage '{name}' has duplicate source_id rows in {where}")
        got = set(table["source_id"])
        if got != ids:
            raise RowBalanceError(
                f"stage '{name}' rows do not balance in {where}: "
                f"{len(ids - got)} sources missing, {len(got - ids)} unknown")
        extra = [c for c in table.columns if c != "source_id" and c in out.columns]
        if extra:
            raise RowBalanceError(f"stage '{name}' overwrites existing columns {extra}")
        # an empty partition's stage table may come back with a float64 source_id (pandas
        # types an empty object column so); the ids balance, so take base's type
        table = table.astype({"source_id": out["source_id"].dtype})
        out = out.merge(table, on="source_id", how="left", validate="one_to_one")
    return out


def conform(df: pd.DataFrame, stage_columns: Sequence[str]) -> pd.DataFrame:
    """Order and type columns to the one catalog schema."""
    dtypes = {**native_dtypes(), **COMMON_DTYPES}
    cols = COMMON_COLUMNS + HOST_COLUMNS + CUT_COLUMNS + all_native_prefixed() + list(
        stage_columns)
    out = df.reindex(columns=cols)
    for c in cols:
        if c in dtypes:
            out[c] = out[c].astype(dtypes[c])
        elif c.startswith("cut_") or c == "passes_cuts":
            out[c] = out[c].astype("boolean") if c != "cut_reason" else out[c].astype("string")
        elif c == "host_nsaid":
            out[c] = out[c].astype("Int64")
        elif out[c].dtype == object and out[c].dropna().map(
                lambda v: isinstance(v, (bool, np.bool_))).all():
            # nullable booleans of a stage (e.g. is_shred) come back from Parquet as object
            out[c] = out[c].astype("boolean")
        elif out[c].dtype == object:
            out[c] = out[c].astype("string")
    return out


def assemble_survey(cut_paths: Sequence[str], stage_paths: Mapping[str, Sequence[str]],
                    out_dir: str | Path, survey: str, release: str, prov: dict
                    ) -> pd.DataFrame:
    """Assemble one survey, one partition in memory at a time; returns the survey's cut
    flow (:func:`survey_cutflow`, summed over partitions, so memory does not grow with the
    number of partitions)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_hpx = {name: {_hpx_of(p): p for p in paths} for name, paths in stage_paths.items()}
    stage_cols: list[str] = []
    flow = None
    n_in = n_out = 0
    for path in sorted(cut_paths, key=_hpx_of):
        hpx = _hpx_of(path)
        base = read_parquet(path)
        n_in += len(base)
        stages = {name: read_parquet(by_hpx[name][hpx]) for name in stage_paths}
        table = join_stage_columns(base, stages, f"{survey} hpx={hpx}")
        if not stage_cols:
            stage_cols = [c for t in stages.values() for c in t.columns if c != "source_id"]
        table = conform(table, stage_cols)
        if len(table) != len(base):
            raise RowBalanceError(f"{survey} hpx={hpx}: {len(base)} rows in, {len(table)} out")
        n_out += len(table)
        part_flow = survey_cutflow(table[CUT_COLUMNS], survey)
        flow = part_flow if flow is None else _add_flows(flow, part_flow)
        units = {**COMMON_UNITS, **NATIVE_UNITS, "host_dist_kpc": "kpc"}
        for name in stage_paths:
            units.update(read_metadata(by_hpx[name][hpx])["units"])
        write_parquet(table.drop(columns=list(PARTITION_KEYS)),
                      out_dir / f"hpx={hpx}" / "part-0.parquet", units=units,
                      prov={**prov, "survey": survey, "release": release, "hpx": hpx})
    log.info("%s: %d rows in, %d rows out, %d partitions", survey, n_in, n_out, len(cut_paths))
    if n_in != n_out:
        raise RowBalanceError(f"{survey}: {n_in} rows in, {n_out} out")
    if flow is None:
        flow = survey_cutflow(pd.DataFrame({c: pd.Series(dtype=bool) for c in CUT_COLUMNS}),
                              survey)
    return flow


def _add_flows(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Sum two partitions' cut flows (same steps in the same order)."""
    if list(a["step"]) != list(b["step"]):
        raise ValueError(f"cut flow steps differ: {list(a['step'])} vs {list(b['step'])}")
    out = a.copy()
    for col in ("n_pass_alone", "n_surviving"):
        out[col] = a[col].to_numpy() + b[col].to_numpy()
    return out


def survey_cutflow(cut_columns: pd.DataFrame, survey: str) -> pd.DataFrame:
    df = cut_columns.copy()
    for c in df.columns:
        if c.startswith("cut_") and c != "cut_reason":
            df[c] = df[c].fillna(False).astype(bool)
    return cutflow(df, survey)

