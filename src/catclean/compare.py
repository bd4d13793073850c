"""Compare two runs' results: the same content, ignoring wall-clock provenance.

catclean promises that the same config gives the same Parquet, and a refactor or a
rerun after a crash must change no result. :func:`compare_runs` checks that for two
result directories (``results/<run_name>``): every Parquet table is compared by content
(schema, row order and values; the ``catclean.wallclock`` metadata and file bytes are
ignored), every JSON file by value with wall-clock fields (timings, timestamps, hosts)
left out, and every CSV by its text. ``catclean compare RUN_A RUN_B`` prints the report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: JSON keys whose values are wall-clock facts, not results
WALLCLOCK_KEY = re.compile(r"(seconds|elapsed|wall|_utc|timestamp|duration|host$|_per_s$|"
                           r"per_second|throughput|started|finished)", re.IGNORECASE)
#: files compared by default (products, not logs or benchmarks)
DEFAULT_GLOBS = ("**/*.parquet", "**/*.json", "**/*.csv")
SKIP_PARTS = {"logs", "benchmarks", ".snakemake"}


@dataclass
class Comparison:
    """What differs between two runs.

    Attributes
    ----------
    same : list of str
        Relative paths whose content is identical.
    differ : dict
        Relative path -> a short description of the first difference.
    only_a, only_b : list of str
        Files present in one run only.
    extra_columns : dict
        Relative path -> columns present in one table only (``common_columns`` mode).
    """

    same: list = field(default_factory=list)
    differ: dict = field(default_factory=dict)
    only_a: list = field(default_factory=list)
    only_b: list = field(default_factory=list)
    extra_columns: dict = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.differ and not self.only_a and not self.only_b

    def report(self) -> str:
        lines = [f"identical: {len(self.same)} files"]
        for path, why in sorted(self.differ.items()):
            lines.append(f"DIFFERS  {path}: {why}")
        lines += [f"ONLY IN A  {p}" for p in sorted(self.only_a)]
        lines += [f"ONLY IN B  {p}" for p in sorted(self.only_b)]
        for path, cols in sorted(self.extra_columns.items()):
            lines.append(f"columns in one run only (not compared)  {path}: {cols}")
        lines.append("RESULT: " + ("same content" if self.identical else "DIFFERENT"))
        return "\n".join(lines)


def _files(root: Path, globs) -> set[str]:
    out = set()
    for pattern in globs:
        for path in root.glob(pattern):
            rel = path.relative_to(root)
            if path.is_file() and not SKIP_PARTS.intersection(rel.parts):
                out.add(rel.as_posix())
    return out


def _strip_wallclock(value):
    if isinstance(value, dict):
        return {k: _strip_wallclock(v) for k, v in value.items() if not WALLCLOCK_KEY.search(k)}
    if isinstance(value, list):
        return [_strip_wallclock(v) for v in value]
    return value


def compare_tables(path_a: Path, path_b: Path, common_columns: bool = False):
    """``(None | first difference, columns in one table only)`` of two Parquet files."""
    import pyarrow.parquet as pq

    a, b = pq.read_table(path_a), pq.read_table(path_b)
    extra = sorted(set(a.column_names) ^ set(b.column_names))
    if common_columns:
        keep = [c for c in a.column_names if c in b.column_names]
        a, b = a.select(keep), b.select(keep)
    elif extra:
        return f"columns differ: {extra}", []
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows against {b.num_rows}", extra
    for name in a.column_names:
        ca, cb = a.column(name), b.column(name)
        if ca.type != cb.type:
            return f"column {name!r}: type {ca.type} against {cb.type}", extra
        if not ca.equals(cb):
            va, vb = ca.to_numpy(zero_copy_only=False), cb.to_numpy(zero_copy_only=False)
            try:
                diff = np.nanmax(np.abs(va.astype(float) - vb.astype(float)))
                return f"column {name!r}: max |difference| {diff:.3g}", extra
            except (TypeError, ValueError):
                n = int(sum(x != y for x, y in zip(va, vb)))
                return f"column {name!r}: {n} values differ", extra
    return None, extra


def compare_runs(run_a, run_b, globs=DEFAULT_GLOBS, common_columns: bool = False) -> Comparison:
    """Compare the products of two result directories.

    Parameters
    ----------
    run_a, run_b : path-like
        ``results/<run_name>`` of each run.
    globs : sequence of str
        File patterns to compare (default: every Parquet, JSON and CSV file outside
        ``logs/`` and ``benchmarks/``).
    common_columns : bool
        Compare only the columns both tables have (for a run against one made before a
        stage added columns); the others are listed in ``extra_columns``.

    Returns
    -------
    Comparison
    """
    run_a, run_b = Path(run_a), Path(run_b)
    for run in (run_a, run_b):
        if not run.is_dir():
            raise FileNotFoundError(f"run directory not found: {run}")
    fa, fb = _files(run_a, globs), _files(run_b, globs)
    out = Comparison(only_a=sorted(fa - fb), only_b=sorted(fb - fa))
    for rel in sorted(fa & fb):
        pa_, pb_ = run_a / rel, run_b / rel
        why = None
        if rel.endswith(".parquet"):
            why, extra = compare_tables(pa_, pb_, common_columns)
            if extra:
                out.extra_columns[rel] = extra
        elif rel.endswith(".json"):
            ja = _strip_wallclock(json.loads(pa_.read_text()))
            jb = _strip_wallclock(json.loads(pb_.read_text()))
            why = None if ja == jb else "JSON values differ"
        elif pa_.read_bytes() != pb_.read_bytes():
            why = "text differs"
        if why:
            out.differ[rel] = why
        else:
            out.same.append(rel)
    return out


def register(subparsers) -> None:
    """``catclean compare RUN_A RUN_B``."""
    parser = subparsers.add_parser(
        "compare", help="compare two runs' products (Parquet/JSON/CSV content, ignoring "
                        "wall-clock provenance); exit 1 when they differ")
    parser.add_argument("run_a", help="results/<run_name> of the first run")
    parser.add_argument("run_b", help="results/<run_name> of the second run")
    parser.add_argument("--glob", action="append", default=None,
                        help="file pattern to compare (repeatable; default: "
                             + ", ".join(DEFAULT_GLOBS) + ")")
    parser.add_argument("--common-columns", action="store_true",
                        help="compare only the columns both tables have")
    parser.set_defaults(func=_main)


def _main(args) -> int:
    res = compare_runs(args.run_a, args.run_b, tuple(args.glob or DEFAULT_GLOBS),
                       args.common_columns)
    print(res.report())
    return 0 if res.identical else 1
