"""Parquet I/O with units and provenance in the key-value metadata.

Every table catclean writes carries, in its Parquet schema metadata:

- ``catclean.provenance``: JSON with package version, config digest, seed, survey, release,
  query text -- everything that makes the content reproducible;
- ``catclean.wallclock``: JSON with the wall-clock time and host (kept apart so that
  reproducibility checks can ignore it);
- ``catclean.units``: JSON mapping column name -> unit string (astropy syntax).

Field-level metadata also holds the unit (``unit`` key) so tools that read per-field
metadata (pyarrow, DuckDB's parquet_schema) see it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__

PROVENANCE_KEY = b"catclean.provenance"
WALLCLOCK_KEY = b"catclean.wallclock"
UNITS_KEY = b"catclean.units"


def provenance(config: Mapping | None = None, **extra) -> dict:
    """Reproducible provenance record (no wall-clock values)."""
    from .config import config_digest

    rec = {"package": "catclean", "version": __version__}
    if config is not None:
        rec["config_digest"] = config_digest(dict(config))
        rec["seed"] = config.get("seed")
    rec.update({k: v for k, v in extra.items() if v is not None})
    return _redacted(rec)


def _redacted(value):
    """``value`` with credentials in every string redacted (:func:`catclean.net.redact`):
    service URLs reach provenance, passwords and tokens must not."""
    from .net import redact

    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted(v) for v in value)
    return value


def _wallclock() -> dict:
    return {
        "written_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
    }


def to_arrow(df: pd.DataFrame | pa.Table, units: Mapping[str, str] | None = None,
             prov: Mapping | None = None) -> pa.Table:
    """Convert to an Arrow table with unit and provenance metadata attached."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    units = {k: v for k, v in (units or {}).items() if k in table.column_names}
    fields = []
    for field in table.schema:
        meta = dict(field.metadata or {})
        if field.name in units:
            meta[b"unit"] = units[field.name].encode()
        fields.append(field.with_metadata(meta) if meta else field)
    meta = dict(table.schema.metadata or {})
    meta.pop(b"pandas", None)  # pandas' index bookkeeping is not part of our contract
    meta[UNITS_KEY] = json.dumps(units, sort_keys=True).encode()
    meta[PROVENANCE_KEY] = json.dumps(dict(prov or {}), sort_keys=True, default=str).encode()
    meta[WALLCLOCK_KEY] = json.dumps(_wallclock()).encode()
    return table.cast(pa.schema(fields, metadata=meta))


def write_parquet(df: pd.DataFrame | pa.Table, path: str | os.PathLike,
                  units: Mapping[str, str] | None = None, prov: Mapping | None = None) -> Path:
    """Write one Parquet file atomically (temp file + rename).

    An interrupted job never leaves a file that looks complete but is not.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = to_arrow(df, units, prov)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Parquet file into pandas, with a clear error if it is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input Parquet file not found: {path}")
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"cannot read Parquet file {path}: {exc}") from exc


def read_metadata(path: str | os.PathLike) -> dict:
    """Return ``{'provenance': ..., 'units': ..., 'wallclock': ...}`` of a catclean Parquet file."""
    meta = pq.read_schema(path).metadata or {}
    out = {}
    for key, name in ((PROVENANCE_KEY, "provenance"), (UNITS_KEY, "units"),
                      (WALLCLOCK_KEY, "wallclock")):
        out[name] = json.loads(meta[key]) if key in meta else {}
    return out
