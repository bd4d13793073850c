"""The whole workflow on a live config pointed at a local replay server (NSA file, Data Lab
TAP, SkyServer, MAST on 127.0.0.1): same Parquet layout and schema as a synthetic run; a
release change (legacy dr9 -> dr10) schedules only Legacy jobs."""

import copy
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from catclean.catalogs.geometry import in_cones_and_pixel
from catclean.io import read_metadata, read_parquet

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
import live_replay as R  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
NSA_PATH = "/sas/nsa_v1_0_1.fits"
OTHER_STAGES = ("cutouts", "shreds", "qa", "blends")


def disable_other_stages(cfg: dict) -> dict:
    """Switch off stages of other developers whose schema has an ``enabled`` key."""
    for stage in OTHER_STAGES:
        schema = REPO / "workflow" / "schemas" / f"{stage}.schema.yaml"
        if schema.exists() and "enabled" in (yaml.safe_load(schema.read_text())
                                             .get("properties") or {}):
            cfg[stage] = {"enabled": False}
    return cfg


def frozen_config(overlay: dict) -> dict:
    """``config/config.yaml`` (which the Snakefile always loads first) merged with
    ``overlay`` and every schema default filled in, so the test config names every key and
    does not change when config.yaml or a schema default is edited during the test."""
    from catclean.config import deep_merge, validate_config

    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return disable_other_stages(validate_config(deep_merge(base, overlay)))


def snakemake_cmd(workdir: Path, configfile: Path, target: str, *extra: str) -> list[str]:
    return [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(configfile), "--cores", "2", *extra, target]


def snakemake(workdir: Path, configfile: Path, target: str, *extra: str, timeout=600):
    res = subprocess.run(snakemake_cmd(workdir, configfile, target, *extra), cwd=workdir,
                         capture_output=True, text=True, timeout=timeout)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run the live workflow (local server) and a tiny synthetic one side by side."""
    fx = R.nsa_hosts_fixture()
    centres = [(150.50, 2.00), (150.62, 2.10)]  # NSAID 1001 and 1002 of the fixture
    tables = {"legacy": R.legacy_table(centres, n=50, radius=0.12),
              "sdss": R.sdss_table(centres, n=50, radius=0.12),
              "ps1": R.ps1_table(centres, n=50, radius=0.12)}
    srv = R.ReplayServer()
    srv.route(NSA_PATH, R.file_service(R.nsa_fits_bytes(fx)))
    srv.route("/tap/sync", R.datalab_service({"ls_dr9.tractor": tables["legacy"],
                                              "ls_dr10.tractor": tables["legacy"]}))
    srv.route("/dr17/SkyServerWS/SearchTools/SqlSearch", R.skyserver_service(tables["sdss"]))
    srv.route("/api/v0.1/panstarrs/dr2/stack.csv", R.mast_service(tables["ps1"]))
    # the morphology stage's host images (fetch_host_images; cutouts are disabled below)
    srv.route("/viewer/cutout.jpg", R.viewer_service("jpg"))
    srv.start()
    # live config: config/live.yaml pointed at the local server
    work = tmp_path_factory.mktemp("live_wf")
    cfg = yaml.safe_load((REPO / "config" / "live.yaml").read_text())
    cfg["hosts"]["nsa"].update(url=srv.url + NSA_PATH, retries=2, backoff=0.01)
    cfg["services"].update(retries=2, backoff=0.01, backoff_max=0.1, timeout=10,
                           row_limit=10)  # small: the workflow exercises query splitting
    for name, path in [("datalab", "/tap"),
                       ("skyserver", "/{release}/SkyServerWS/SearchTools/SqlSearch"),
                       ("mast", "/api/v0.1"), ("legacy_viewer", "/viewer")]:
        cfg["services"][name]["url"] = srv.url + path
    cfg = frozen_config(cfg)
    conf = work / "live_test.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    # tiny synthetic config: one host, Legacy only (all surveys share one catalog schema)
    swork = tmp_path_factory.mktemp("syn_wf")
    scfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    scfg["run_name"] = "syn"
    scfg["hosts"]["synthetic"].update(n_hosts=1, nan_redshift_hosts=0)
    scfg["sky"].update(field_max_pix=200, background_density=3000, star_density=1000,
                       satellites_per_host=[1, 2])
    for s in ("sdss", "ps1"):
        scfg["surveys"][s]["enabled"] = False
    scfg = frozen_config(scfg)
    sconf = swork / "syn.yaml"
    sconf.write_text(yaml.safe_dump(scfg))
    procs = [subprocess.Popen(snakemake_cmd(w, c, t), cwd=w, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for w, c, t in [(work, conf, "results/live/catalog/_SUCCESS"),
                             (swork, sconf, "results/syn/catalog/_SUCCESS")]]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-6000:]
    yield {"work": work, "cfg": cfg, "conf": conf, "server": srv, "tables": tables,
           "log": outs[0], "synthetic": swork / "results" / "syn"}
    srv.stop()


@pytest.fixture(scope="module")
def live_run(runs):
    return runs


@pytest.fixture(scope="module")
def synthetic_run(runs):
    return runs["synthetic"]


def test_live_workflow_catalog_rows_and_provenance(live_run):
    res = live_run["work"] / "results" / "live"
    assert (res / "catalog" / "_SUCCESS").exists()
    hosts = read_parquet(res / "hosts" / "hosts.parquet")
    assert sorted(hosts.NSAID) == [1001, 1002]  # NSA selection by region, z and mass
    nside = live_run["cfg"]["partition"]["nside"]
    for survey, (rac, decc) in {"legacy": ("ra", "dec"), "sdss": ("ra", "dec"),
                                "ps1": ("raStack", "decStack")}.items():
        parts = sorted((res / "catalog" / f"survey={survey}").glob("hpx=*/part-0.parquet"))
        assert parts
        got = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        t = live_run["tables"][survey]
        if survey == "ps1":
            t = t[t.primaryDetection == 1]
        want = sum(int(in_cones_and_pixel(t[rac], t[decc], hosts, int(p.parent.name[4:]),
                                          nside).sum()) for p in parts)
        assert len(got) == want > 0
        assert got.source_id.str.startswith(f"{survey}:").all()
        assert got.source_id.is_unique
        raw = next((res / "raw" / survey).glob("*/hpx=*.parquet"))
        prov = read_metadata(raw)["provenance"]
        assert prov["service"] in ("datalab", "skyserver", "mast")
        assert prov["release"] == live_run["cfg"]["surveys"][survey]["release"]
        assert prov["query"] and all(len(r["sha256"]) == 64 for r in prov["responses"])
        assert all(r["fetched_utc"] for r in prov["responses"])
    # row_limit=10 forced splits, and every raw answer is cached under results/live/cache
    assert "hit the row limit" in "".join(
        p.read_text() for p in (res / "logs" / "query_catalog").glob("*.log"))
    for svc, rel in [("datalab", "dr9"), ("skyserver", "dr17"), ("mast", "dr2")]:
        assert list((res / "cache" / svc / rel).glob("*.json"))
    assert (live_run["work"] / "results" / "_cache" / "nsa" / "nsa_v1_0_1.fits.json").exists()


def test_live_catalog_has_synthetic_layout_and_schema(live_run, synthetic_run):
    live_res = live_run["work"] / "results" / "live"
    sp = sorted((synthetic_run / "catalog" / "survey=legacy").glob("hpx=*/part-0.parquet"))
    assert sp
    ss = pq.read_schema(sp[0])
    for survey in ("legacy", "sdss", "ps1"):
        lp = sorted((live_res / "catalog" / f"survey={survey}").glob("hpx=*/part-0.parquet"))
        assert lp
        for path in lp:  # same hive layout: survey=<s>/hpx=<p>/part-0.parquet
            assert path.parent.name.startswith("hpx=") and path.parent.name[4:].isdigit()
        ls = pq.read_schema(lp[0])
        assert ls.names == ss.names, survey
        assert [str(f.type) for f in ls] == [str(f.type) for f in ss], survey
    import pyarrow.dataset as ds

    t = ds.dataset(live_res / "catalog", format="parquet", partitioning="hive").to_table()
    assert set(t.column("survey").to_pylist()) == {"legacy", "sdss", "ps1"}


def dry_run_jobs(text: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job in a Snakemake dry-run listing."""
    jobs, rule = [], None
    for line in text.splitlines():
        m = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line)
        if m:
            rule = m.group(1)
            jobs.append([rule, ""])
            continue
        m = re.match(r"^\s+wildcards: (.*)$", line)
        if m and jobs:
            jobs[-1][1] = m.group(1)
    return [tuple(j) for j in jobs]


def test_release_change_reruns_only_legacy(live_run):
    work = live_run["work"]
    same = dry_run_jobs(snakemake(work, live_run["conf"], "results/live/catalog/_SUCCESS",
                                  "-n"))
    assert same == []  # nothing to do on an unchanged config
    cfg = copy.deepcopy(live_run["cfg"])
    cfg["surveys"]["legacy"]["release"] = "dr10"
    conf = work / "live_dr10.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    jobs = dry_run_jobs(snakemake(work, conf, "results/live/catalog/_SUCCESS", "-n"))
    assert jobs, "the release change scheduled nothing"
    rules = {r for r, _ in jobs}
    assert {"query_catalog", "normalize", "cuts", "assemble"} <= rules
    others = []
    for rule, wc in jobs:
        if rule == "catalog_done":  # the final marker depends on every survey
            continue
        if "survey=legacy" not in wc:
            others.append((rule, wc))
            continue
        if "release=" in wc:
            assert "release=dr10" in wc, (rule, wc)
    # nothing of the other surveys' catalogs re-runs: not their queries, normalisation or
    # cuts. The hosts' images are Legacy viewer cutouts of the Legacy release (the
    # morphology stage's imaging), so a new Legacy release rightly re-fetches and
    # re-segments them, and every survey's in_host_mask / morph_* columns and assembly
    # follow; only those.
    from_host_images = {"fetch_host_images", "segment_hosts", "morphology_columns",
                        "morphology_shred_crosscheck", "assemble"}
    assert {rule for rule, _ in others} <= from_host_images, others
    assert {"fetch_host_images", "segment_hosts"} <= {rule for rule, _ in others}
