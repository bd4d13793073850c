"""How the catalog side of the workflow scales with the number of hosts (issue 14).

For each scale factor k the synthetic sky gets k x the default run's hosts over k x its
area (same host density, so a partition holds as many sources at every scale), and the
workflow runs in a temporary directory up to the assembled catalog:

    hosts -> render_field -> query_catalog -> normalize -> cuts -> cutouts -> score_shreds
          -> assemble (+ shreds_summary, cutflow_report, sky_plot)

The training stages (make_shred_training_set, train_shred_cnn, blends, morphology, SOM,
QA) are off: they do not grow with the number of hosts. score_shreds uses an untrained
model of the `small` shreds architecture written once (``shreds.model.kind: keras``), so
scoring costs what it costs with a trained one.

Reported per scale: hosts, partitions, jobs, wall time (and per host), peak memory per job
from the ``benchmark:`` files (``max_rss``, MB; worst job of each rule), and the time
Snakemake takes to build the DAG (``snakemake -n`` once the hosts checkpoint has run, so
every partition job is in the DAG). Ratios are to the x1 run of the same invocation.

    python benchmarks/bench_scaling.py                  # x1, x4 run; x16, x64 dry-run only
    python benchmarks/bench_scaling.py --run 1,4,16 --dry 64
    python benchmarks/bench_scaling.py --json out.json  # also write the figures

Defaults shrink the rendered fields (``--field-max-pix 1200``, the default run renders up
to 2400 px) so x1 + x4 take ~15 minutes on 2 cores; per-host numbers scale with the field
area, the *ratios* between scales do not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

RULES = ["hosts", "render_field", "query_catalog", "normalize", "cuts", "cutouts",
         "score_shreds", "assemble", "shreds_summary"]
PER_PARTITION = ["query_catalog", "normalize", "cuts", "cutouts", "score_shreds"]


def default_config() -> dict:
    with open(REPO / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


def write_model(path: Path) -> None:
    """An untrained shred CNN of the `small` preset (same cost per stamp as a trained one)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from catclean.config import preset_settings, validate_config
    from catclean.shreds.model import ShredArch, build_shred_cnn

    cfg = default_config()
    validate_config(cfg, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    arch = ShredArch.from_config(preset_settings(cfg, "shreds"))
    build_shred_cnn(arch).save(path)


def overrides(k: int, model: Path, field_max_pix: int, base: dict, surveys: list[str]) -> dict:
    """k x the default hosts over k x the default area (constant density)."""
    syn = base["hosts"]["synthetic"]
    (ra0, ra1), (dec0, dec1) = syn["ra_range"], syn["dec_range"]
    side = math.sqrt(k)
    return {
        "run_name": f"x{k}",
        "hosts": {"synthetic": {
            "n_hosts": syn["n_hosts"] * k,
            "nan_redshift_hosts": syn["nan_redshift_hosts"] * k,
            "ra_range": [ra0, ra0 + (ra1 - ra0) * side],
            "dec_range": [dec0, dec0 + (dec1 - dec0) * side]}},
        "sky": {"field_max_pix": field_max_pix},
        "surveys": {name: {"enabled": name in surveys} for name in base["surveys"]},
        "shreds": {"enabled": True, "model": {"kind": "keras", "path": str(model)}},
        "blends": {"enabled": False}, "qa": {"enabled": False},
        "morphology": {"enabled": False}, "som": {"enabled": False},
    }


def snakemake(work: Path, over: dict, *args: str, timeout: int = 7200):
    (work / "overrides.yaml").write_text(yaml.safe_dump(over))
    cmd = [sys.executable, "-m", "snakemake", *args, "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(work), "--configfile", str(REPO / "config" / "config.yaml"),
           str(work / "overrides.yaml")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"snakemake {' '.join(args)} failed in {work}:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout + proc.stderr


def job_count(dry_output: str) -> int:
    """'total N' of a dry run's job table."""
    for line in dry_output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            return int(parts[1])
    return 0


def benchmarks(run_dir: Path) -> dict[str, dict]:
    """Per rule: jobs, worst max_rss (MB), worst and summed wall time (s), summed CPU time
    (s: the work, which a shared machine's load does not inflate as it does wall time)."""
    from catclean.resources import benchmark_files, benchmark_patterns, read_benchmark, rule_of

    patterns = benchmark_patterns()
    out: dict[str, dict] = {}
    for path in benchmark_files(run_dir):
        r = out.setdefault(rule_of(path.resolve(), patterns),
                           {"jobs": 0, "max_rss_mb": 0.0, "max_s": 0.0, "sum_s": 0.0,
                            "cpu_s": 0.0})
        for row in read_benchmark(path):
            r["jobs"] += 1
            r["max_rss_mb"] = max(r["max_rss_mb"], row["max_rss"] or 0.0)
            r["max_s"] = max(r["max_s"], row["s"] or 0.0)
            r["sum_s"] += row["s"] or 0.0
            r["cpu_s"] += row["cpu_time"] or 0.0
    return out


def catalog_rows(run_dir: Path) -> dict:
    """Sources in the assembled catalog (all surveys) and the disk the run used (MB)."""
    import pyarrow.parquet as pq

    rows = sum(pq.read_metadata(p).num_rows for p in (run_dir / "catalog").rglob("*.parquet"))
    disk = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file()) / 1e6
    return {"rows": rows, "disk_mb": round(disk, 1)}


def measure(k: int, root: Path, model: Path, field_max_pix: int, cores: int, dry_only: bool,
            base: dict, surveys: list[str]) -> dict:
    work = root / f"x{k}"
    work.mkdir(parents=True, exist_ok=True)
    over = overrides(k, model, field_max_pix, base, surveys)
    hosts_file = f"results/x{k}/hosts/plan.json"
    snakemake(work, over, hosts_file, "--cores", "1", "--quiet")  # the checkpoint
    plan = json.loads((work / hosts_file).read_text())
    dag_s, dry = snakemake(work, over, "-n", "--quiet", "rules")
    res = {"scale": k, "hosts": over["hosts"]["synthetic"]["n_hosts"],
           "partitions": len(plan["partitions"]), "jobs": job_count(dry) + 1,
           "dag_s": round(dag_s, 2), "dry_only": dry_only}
    if dry_only:
        return res
    wall, _ = snakemake(work, over, "--cores", str(cores), "--quiet")
    res["wall_s"] = round(wall, 1)
    res["wall_per_host_s"] = round(wall / res["hosts"], 2)
    res["rules"] = benchmarks(work / "results" / f"x{k}")
    res.update(catalog_rows(work / "results" / f"x{k}"))
    return res


def report(results: list[dict]) -> str:
    base = next((r for r in results if not r["dry_only"]), None)
    notes = [f"x{r['scale']}: {r['note']}" for r in results if r.get("note")]
    lines = ["scale hosts partitions jobs  dag_s  wall_s  s/host  cpu_s/host  sources  disk_MB"
             "   (ratio to x1)"]
    for r in results:
        if r["dry_only"]:
            lines.append(f"x{r['scale']:<4} {r['hosts']:5d} {r['partitions']:10d} {r['jobs']:5d} "
                         f"{r['dag_s']:6.1f}  (dry run only)"
                         + (f"   jobs x{r['jobs'] / base['jobs']:.1f}, dag x"
                            f"{r['dag_s'] / base['dag_s']:.1f}" if base else ""))
            continue
        cpu = sum(b.get("cpu_s", 0.0) for b in r["rules"].values()) / r["hosts"]
        cpu0 = sum(b.get("cpu_s", 0.0) for b in base["rules"].values()) / base["hosts"]
        ratio = (f"   wall x{r['wall_s'] / base['wall_s']:.2f}, s/host x"
                 f"{r['wall_per_host_s'] / base['wall_per_host_s']:.2f}, cpu/host x"
                 f"{cpu / cpu0:.2f}, jobs x{r['jobs'] / base['jobs']:.1f}"
                 ) if base and r is not base and cpu0 else ""
        lines.append(f"x{r['scale']:<4} {r['hosts']:5d} {r['partitions']:10d} {r['jobs']:5d} "
                     f"{r['dag_s']:6.1f} {r['wall_s']:7.1f} {r['wall_per_host_s']:7.2f} "
                     f"{cpu:11.2f} {r.get('rows', 0):8d} {r['disk_mb']:8.1f}{ratio}")
    runs = [r for r in results if not r["dry_only"]]
    if runs:
        lines += ["", "peak memory per job (max_rss MB, worst job of the rule) / jobs / worst s"]
        head = "rule              " + "".join(f"{'x' + str(r['scale']):>22s}" for r in runs)
        lines.append(head + "   rss ratio (last/x1)")
        rules = [x for x in RULES if any(x in r["rules"] for r in runs)]
        for rule in rules:
            cells, rss = [], []
            for r in runs:
                b = r["rules"].get(rule)
                cells.append(f"{b['max_rss_mb']:7.0f} /{b['jobs']:4d} /{b['max_s']:6.1f}"
                             if b else f"{'-':>22s}")
                rss.append(b["max_rss_mb"] if b else None)
            ratio = (f"   x{rss[-1] / rss[0]:.2f}" if rss[0] and rss[-1] and len(rss) > 1 else "")
            flag = "  (per partition)" if rule in PER_PARTITION else ""
            lines.append(f"{rule:18s}" + "".join(f"{c:>22s}" for c in cells) + ratio + flag)
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default="1,4", help="scale factors to run (comma-separated)")
    ap.add_argument("--dry", default="16,64", help="scale factors to dry-run only")
    ap.add_argument("--field-max-pix", type=int, default=1200,
                    help="sky.field_max_pix (default run: 2400)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--surveys", default="legacy,sdss,ps1",
                    help="enabled surveys (comma-separated; the default run has all three)")
    ap.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--report", type=Path,
                    help="only print the table of an earlier --json file, re-reading the "
                         "benchmark files of its --keep folder when they are still there")
    ap.add_argument("--baseline", type=Path,
                    help="--json file of an earlier invocation whose runs are added to the "
                         "table (when x1 is not run again here; the table says so)")
    args = ap.parse_args(argv)
    if args.report:
        data = json.loads(args.report.read_text())
        for r in data["results"]:
            run_dir = Path(data.get("root", "")) / f"x{r['scale']}" / "results" / f"x{r['scale']}"
            if not r["dry_only"] and run_dir.is_dir():
                r["rules"] = benchmarks(run_dir)
                r.update(catalog_rows(run_dir))
        print(report(data["results"]))
        return 0
    runs = [int(x) for x in args.run.split(",") if x]
    drys = [int(x) for x in args.dry.split(",") if x]
    root = args.keep or Path(tempfile.mkdtemp(prefix="catclean-scaling-"))
    root.mkdir(parents=True, exist_ok=True)
    base = default_config()
    try:
        model = root / "shred_cnn_small_untrained.keras"
        if not model.exists():
            write_model(model)
        results = []
        for k in sorted(set(runs) | set(drys)):
            t0 = time.perf_counter()
            results.append(measure(k, root, model, args.field_max_pix, args.cores,
                                   k not in runs, base, args.surveys.split(",")))
            print(f"x{k}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        if args.baseline:
            earlier = json.loads(args.baseline.read_text())["results"]
            for r in earlier:
                r["note"] = f"from {args.baseline.name}"
            done = {r["scale"] for r in results}
            results = sorted([r for r in earlier if r["scale"] not in done] + results,
                             key=lambda r: (r["dry_only"], r["scale"]))
        text = report(results)
        print(text)
        if args.json:
            args.json.write_text(json.dumps({"root": str(root) if args.keep else None,
                                             "field_max_pix": args.field_max_pix,
                                             "surveys": args.surveys,
                                             "cores": args.cores, "results": results}, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
