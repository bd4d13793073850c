"""Suggested cluster resources from a finished run's ``benchmark:`` files.

Every heavy rule writes a Snakemake benchmark TSV (columns ``s``, ``h:m:s``, ``max_rss``,
``max_vms``, ...; ``max_rss`` in MB). :func:`suggest_resources` reads all of them under a
run directory (``results/<run>/benchmarks/**.tsv`` and ``results/<run>/qa/benchmarks/**.tsv``),
groups them by the rule that wrote them and turns the worst case of each rule into a
request with head room:

* ``mem_mb  = 1.5 x max(max_rss)``, rounded up to a multiple of 500 MB;
* ``runtime = ceil(2 x max(s) / 60)`` minutes, at least 5.

:func:`format_set_resources` prints the result as the ``set-resources:`` block of a
Snakemake profile (``profiles/slurm/config.yaml``). Command line::

    python -m catclean.resources results/synthetic

The rule that wrote a file is found from the ``benchmark:`` patterns in
``workflow/rules/*.smk`` (so renamed rules and new benchmark paths need no change here);
files that match no pattern fall back to their folder or file name.
"""

from __future__ import annotations

import csv
import math
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = REPO_ROOT / "workflow" / "rules"

MEM_FACTOR = 1.5
MEM_STEP_MB = 500
TIME_FACTOR = 2.0
MIN_RUNTIME_MIN = 5

_RULE_RE = re.compile(r"^[ \t]*(?:rule|checkpoint)[ \t]+(\w+)[ \t]*:", re.M)
_BENCH_RE = re.compile(r"^[ \t]*benchmark:[ \t]*\n[ \t]*(f?)([\"'])(.+?)\2", re.M)
_TOKEN_RE = re.compile(r"\{\{(\w+)\}\}|\{(\w+)\}")


def _pattern_regex(text: str, fstring: bool) -> tuple[re.Pattern, int]:
    """A benchmark path pattern as a regex over a file path, and its number of literal
    characters (the more, the more specific). In an f-string ``{{w}}`` is a wildcard and
    ``{VAR}`` a workflow variable (any prefix); in a plain string ``{w}`` is a wildcard."""
    out, literal, pos = [], 0, 0
    for m in _TOKEN_RE.finditer(text):
        lit = text[pos:m.start()]
        out.append(re.escape(lit))
        literal += len(lit)
        if m.group(1) is not None or not fstring:
            out.append(r"[^/]+")  # a wildcard
        else:
            out.append(r".*")  # RESULTS, QA_DIR, ...: some directory prefix
        pos = m.end()
    out.append(re.escape(text[pos:]))
    literal += len(text) - pos
    return re.compile("(?:.*/)?" + "".join(out)), literal


def benchmark_patterns(rules_dir: Path | str = RULES_DIR) -> list[tuple[str, re.Pattern, int]]:
    """``(rule, regex, specificity)`` for every ``benchmark:`` directive under ``rules_dir``."""
    found = []
    for smk in sorted(Path(rules_dir).glob("*.smk")):
        text = smk.read_text()
        heads = list(_RULE_RE.finditer(text))
        for i, head in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            bench = _BENCH_RE.search(text, head.end(), end)
            if bench:
                regex, spec = _pattern_regex(bench.group(3), bench.group(1) == "f")
                found.append((head.group(1), regex, spec))
    return found


def _fallback_rule(path: Path) -> str:
    """Rule name from the file's place when no benchmark pattern matches it."""
    if path.parent.name != "benchmarks":
        return path.parent.name
    return re.sub(r"(_b?\d+)+$", "", path.stem)


def rule_of(path: Path, patterns) -> str:
    best, best_spec = None, -1
    text = path.as_posix()
    for rule, regex, spec in patterns:
        if regex.fullmatch(text) and spec > best_spec:
            best, best_spec = rule, spec
    return best or _fallback_rule(path)


def _float(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def read_benchmark(path: Path | str) -> list[dict]:
    """Rows of one benchmark TSV (one per ``--benchmark-repeats``) as ``{s, max_rss,
    cpu_time}`` (seconds, MB, CPU seconds)."""
    with open(path, newline="") as fh:
        return [{"s": _float(row.get("s")), "max_rss": _float(row.get("max_rss")),
                 "cpu_time": _float(row.get("cpu_time"))}
                for row in csv.DictReader(fh, delimiter="\t")]


def benchmark_files(benchmark_dir: Path | str) -> list[Path]:
    """Benchmark TSVs of a run: every ``*.tsv`` below a folder named ``benchmarks`` under
    ``benchmark_dir`` (or all TSVs, when ``benchmark_dir`` itself is such a folder)."""
    root = Path(benchmark_dir)
    if root.name == "benchmarks":
        return sorted(root.rglob("*.tsv"))
    return sorted(p for p in root.rglob("*.tsv")
                  if "benchmarks" in p.relative_to(root).parts[:-1])


def mem_request(max_rss_mb: float) -> int:
    return max(MEM_STEP_MB, math.ceil(MEM_FACTOR * max_rss_mb / MEM_STEP_MB) * MEM_STEP_MB)


def runtime_request(max_s: float) -> int:
    return max(MIN_RUNTIME_MIN, math.ceil(TIME_FACTOR * max_s / 60.0))


def suggest_resources(benchmark_dir: Path | str, rules_dir: Path | str | None = None) -> dict:
    """Suggested ``{rule: {mem_mb, runtime, max_rss_mb, max_s, n_files}}`` from the
    benchmark files of a finished run (``results/<run>``). ``mem_mb`` and ``runtime``
    (minutes) are the requests; the other keys are the measurements behind them."""
    files = benchmark_files(benchmark_dir)
    if not files:
        raise FileNotFoundError(f"no benchmark TSV files under {benchmark_dir}")
    rules_dir = RULES_DIR if rules_dir is None else Path(rules_dir)
    patterns = benchmark_patterns(rules_dir) if rules_dir.is_dir() else []
    per_rule: dict[str, dict] = {}
    for path in files:
        rule = rule_of(path.resolve(), patterns)
        agg = per_rule.setdefault(rule, {"max_rss_mb": 0.0, "max_s": 0.0, "n_files": 0})
        agg["n_files"] += 1
        for row in read_benchmark(path):
            if row["max_rss"] is not None:
                agg["max_rss_mb"] = max(agg["max_rss_mb"], row["max_rss"])
            if row["s"] is not None:
                agg["max_s"] = max(agg["max_s"], row["s"])
    return {
        rule: {"mem_mb": mem_request(agg["max_rss_mb"]),
               "runtime": runtime_request(agg["max_s"]), **agg}
        for rule, agg in sorted(per_rule.items())
    }


def format_set_resources(suggestions: dict) -> str:
    """The suggestions as a profile's ``set-resources:`` YAML block, each value with the
    measurement behind it as a comment."""
    lines = ["set-resources:"]
    for rule, res in suggestions.items():
        lines.append(f"  {rule}:")
        mem_note = runtime_note = ""
        if "max_rss_mb" in res:
            mem_note = (f"  # {MEM_FACTOR:g} x max_rss {res['max_rss_mb']:.0f} MB"
                        f" over {res.get('n_files', '?')} job(s)")
        if "max_s" in res:
            runtime_note = f"  # {TIME_FACTOR:g} x {res['max_s']:.0f} s, >= {MIN_RUNTIME_MIN}"
        lines.append(f"    mem_mb: {res['mem_mb']}{mem_note}")
        lines.append(f"    runtime: {res['runtime']}{runtime_note}")
    return "\n".join(lines) + "\n"


def register(sub) -> None:
    """``catclean resources RUN_DIR``: suggested SLURM ``set-resources`` from benchmarks."""
    ap = sub.add_parser(
        "resources",
        help="suggest profile set-resources (mem_mb, runtime) from a finished run",
        description="Print suggested Snakemake set-resources (mem_mb, runtime) from the "
                    "benchmark files of a finished run.")
    ap.add_argument("run_dir", help="a finished run's results folder, e.g. results/synthetic")
    ap.add_argument("--rules-dir", default=None,
                    help=f"workflow rule files with the benchmark: patterns [{RULES_DIR}]")
    ap.set_defaults(func=_suggest_command)


def _suggest_command(args) -> int:
    try:
        sugg = suggest_resources(args.run_dir, args.rules_dir)
    except FileNotFoundError as exc:
        print(f"catclean resources: {exc}", file=sys.stderr)
        return 1
    n = sum(r["n_files"] for r in sugg.values())
    print(f"# suggested by `catclean resources` from {n} benchmark files under {args.run_dir}")
    print(format_set_resources(sugg), end="")
    return 0
