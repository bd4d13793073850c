"""The tiny catalog workflow on a real one-node SLURM cluster through profiles/slurm.

A module fixture starts Debian's SLURM 22.05 (``slurm-wlm``) on localhost: it writes a
one-node ``/etc/slurm/slurm.conf`` (2 CPUs, no accounting, state and spool in a temporary
folder), creates a munge key, and starts ``munged``, ``slurmctld`` and ``slurmd`` in the
foreground as child processes; it waits until ``sinfo`` shows the node idle and stops the
daemons by PID afterwards (restoring any previous slurm.conf). The workflow then runs with
``--workflow-profile profiles/slurm`` and its catalog must equal a local run's.

Without the SLURM binaries, root, or daemons that come up, the test FAILS with the reason;
it never skips (``scripts/install_system_tools.sh`` installs slurm-wlm and munge with apt).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import tiny_overrides

from catclean.cli import main as cli_main
from catclean.resources import format_set_resources, suggest_resources

SLURM_CONF = Path("/etc/slurm/slurm.conf")
TOOLS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scontrol", "scancel")
LOCK = Path("/tmp/catclean-test-slurm.lock")  # one test cluster per machine at a time
PARTITION = "catclean"
TARGET = "results/tiny/catalog/_SUCCESS"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def slurm_conf(base: Path, munge_socket: Path, ctld_port: int, slurmd_port: int) -> str:
    """A one-node cluster on localhost: 2 CPUs, most of the machine's memory, no accounting."""
    real_memory = int(_mem_mb() * 0.9)  # slurmd drains a node that reports less than this
    return f"""\
# written by tests/test_slurm.py for a one-node test cluster; restored/removed afterwards
ClusterName=catclean-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# keep finished jobs visible to squeue (the status command without accounting)
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory={real_memory} State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return f"--- {path} ---\n{path.read_text(errors='replace')[-n:]}"
    except OSError:
        return f"--- {path}: missing ---"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _node_state() -> str:
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True,
                         timeout=20)
    return (out.stdout + out.stderr).strip()


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"SLURM is not installed (missing {', '.join(missing)}): this test needs Debian's "
            "slurm-wlm and munge; `bash scripts/install_system_tools.sh` installs them as root "
            "with apt-get (make test runs it). Not skipped on purpose.", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the SLURM test starts slurmctld/slurmd with SlurmUser=root and writes "
                    f"{SLURM_CONF}: run it as root", pytrace=False)
    LOCK.touch(exist_ok=True)
    lock = open(LOCK)
    fcntl.flock(lock, fcntl.LOCK_EX)

    base = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool", "log"):
        (base / sub).mkdir()
    munge_dir = base / "munge"
    munge_dir.mkdir(mode=0o755)
    key_dir = base / "munge_key"
    key_dir.mkdir(mode=0o700)
    key = key_dir / "munge.key"
    if not key.exists():  # a fresh key for this private munged (not /etc/munge's)
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
    sock = munge_dir / "munge.sock"

    backup = None
    if SLURM_CONF.exists():
        backup = SLURM_CONF.read_bytes()
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(slurm_conf(base, sock, _free_port(), _free_port()))

    procs: list[subprocess.Popen] = []

    def start(name, cmd):
        out = open(base / "log" / f"{name}.out", "w")
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True))

    logs = [base / "log" / n for n in ("munged.out", "slurmctld.out", "slurmctld.log",
                                       "slurmd.out", "slurmd.log")]
    try:
        start("munged", ["munged", "--foreground", "--force", f"--socket={sock}",
                         f"--key-file={key}", f"--pid-file={munge_dir}/munged.pid",
                         f"--seed-file={munge_dir}/munged.seed",
                         f"--log-file={base}/log/munged.log"])
        deadline = time.time() + 20
        while not sock.exists() and time.time() < deadline and procs[0].poll() is None:
            time.sleep(0.2)
        if not sock.exists():
            pytest.fail("munged did not start:\n" + _tail(logs[0]), pytrace=False)
        start("slurmctld", ["slurmctld", "-D", "-i", "-f", str(SLURM_CONF)])
        time.sleep(1)
        start("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(SLURM_CONF)])
        deadline, state = time.time() + 90, ""
        while time.time() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            state = _node_state()
            if state == "idle":
                break
            time.sleep(1)
        if state != "idle":
            pytest.fail(f"the one-node SLURM cluster did not come up (sinfo: {state!r}; "
                        f"daemons exited: {[p.args[0] for p in procs if p.poll() is not None]})"
                        "\n" + "\n".join(_tail(p) for p in logs), pytrace=False)
        yield {"base": base, "conf": SLURM_CONF}
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["scancel", "--full", "--partition", PARTITION], timeout=20,
                           capture_output=True)
        for proc in reversed(procs):  # slurmd, slurmctld, munged: by PID
            _stop(proc)
        if backup is not None:
            SLURM_CONF.write_bytes(backup)
        else:
            SLURM_CONF.unlink(missing_ok=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _cmd(repo: Path, workdir: Path, extra=()) -> list[str]:
    return [sys.executable, "-m", "snakemake", TARGET, "--snakefile", str(repo / "Snakefile"),
            "--directory", str(workdir), *extra,
            "--configfile", str(repo / "config" / "config.yaml"), str(workdir / "over.yaml")]


def _env(repo: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(repo / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _catalog_parts(run: Path) -> dict[Path, Path]:
    root = run / "results" / "tiny" / "catalog"
    return {p.relative_to(root): p for p in root.glob("survey=*/hpx=*/part-0.parquet")}


@pytest.mark.slow
def test_tiny_workflow_on_slurm_equals_local_run(repo, slurm_cluster, tmp_path):
    over = yaml.safe_dump(tiny_overrides("tiny"))
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    for d in (local, slurm):
        d.mkdir()
        (d / "over.yaml").write_text(over)
    env = _env(repo)
    # the local reference run goes alongside (the SLURM run mostly waits for the scheduler)
    local_proc = subprocess.Popen(_cmd(repo, local, ["--cores", "1"]), env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t0 = time.time()
    # the profile as written plus what a test cluster needs: squeue for job states (no
    # accounting), short first status check and latency wait, 2 CPUs per submission, and
    # the SLURM logs of successful jobs kept as evidence
    proc = subprocess.run(
        _cmd(repo, slurm, ["--workflow-profile", str(repo / "profiles" / "slurm"),
                           "--cores", "2", "--latency-wait", "5",
                           "--slurm-status-command", "squeue",
                           "--slurm-init-seconds-before-status-checks", "2",
                           "--slurm-keep-successful-logs"]),
        env=env, capture_output=True, text=True, timeout=1500)
    slurm_s = time.time() - t0
    log = proc.stdout + proc.stderr
    local_out, _ = local_proc.communicate(timeout=1500)
    assert proc.returncode == 0, log[-6000:] + "\n" + _tail(slurm_cluster["base"] / "log" /
                                                           "slurmctld.log")
    assert local_proc.returncode == 0, local_out[-4000:]
    print(f"SLURM run of the tiny workflow: {slurm_s:.0f} s")

    # the jobs really went through SLURM: sbatch job ids, one SLURM log per job, and the
    # profile's per-rule resources on the jobs as slurmctld recorded them
    ids = dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: ([^)]+)\)", log))
    assert len(ids) >= 5, log[-3000:]
    rules = {Path(p).relative_to(slurm / ".snakemake" / "slurm_logs").parts[0]
             for p in ids.values()}
    assert {"rule_hosts", "rule_render_field", "rule_query_catalog", "rule_assemble",
            "group_partition_cuts_normalize"} <= rules, rules
    assert all(Path(p).is_file() for p in ids.values())
    render = next(j for j, p in ids.items() if "/rule_render_field/" in p)
    sc = subprocess.run(["scontrol", "show", "job", render], capture_output=True, text=True,
                        timeout=20)
    show = sc.stdout
    assert "JobState=COMPLETED" in show, sc.stdout + sc.stderr
    assert f"Partition={PARTITION}" in show, show
    res = yaml.safe_load((repo / "profiles" / "slurm" / "config.yaml").read_text())
    want = res["set-resources"]["render_field"]
    assert f"MinMemoryNode={want['mem_mb']}M" in show, show
    assert f"TimeLimit=00:{want['runtime']:02d}:00" in show, show
    assert "local" not in {r.split("_", 1)[0] for r in rules}

    # same catalog as the local run, ignoring wall-clock provenance
    a_parts, b_parts = _catalog_parts(local), _catalog_parts(slurm)
    assert a_parts and a_parts.keys() == b_parts.keys()
    for rel, pa_ in a_parts.items():
        a, b = pq.read_table(pa_), pq.read_table(b_parts[rel])
        assert a.equals(b), rel
        meta_a = {k: v for k, v in a.schema.metadata.items() if k != b"catclean.wallclock"}
        meta_b = {k: v for k, v in b.schema.metadata.items() if k != b"catclean.wallclock"}
        assert meta_a == meta_b, rel
    for name in ("legacy", "sdss", "ps1"):
        assert ((local / "results/tiny/cutflow" / f"{name}.csv").read_text()
                == (slurm / "results/tiny/cutflow" / f"{name}.csv").read_text())


# --- catclean.resources: profile numbers from benchmark files (fast) ---------------------

FIXTURE_RUN = Path(__file__).parent / "fixtures" / "slurm" / "run"


def test_suggest_resources_from_benchmark_files():
    sugg = suggest_resources(FIXTURE_RUN)
    # rule names come from the workflow's benchmark: patterns
    assert set(sugg) == {"render_field", "make_blends", "train_shred_cnn", "score_shreds",
                         "qa_make_exposures"}
    # 1.5 x the worst max_rss, up to a multiple of 500 MB; 2 x the longest s, >= 5 min
    assert sugg["render_field"] == {"mem_mb": 1000, "runtime": 5, "max_rss_mb": 556.2,
                                    "max_s": 27.1, "n_files": 2}
    assert sugg["make_blends"]["mem_mb"] == 500
    assert sugg["train_shred_cnn"]["mem_mb"] == 5000  # 1.5 x 3100 over two repeats
    assert sugg["train_shred_cnn"]["runtime"] == 21  # 2 x 610 s
    assert sugg["score_shreds"] == {"mem_mb": 500, "runtime": 5, "max_rss_mb": 0.0,
                                    "max_s": 0.5, "n_files": 1}  # NA rss: the floor
    assert sugg["qa_make_exposures"]["runtime"] == 5


def test_format_set_resources_is_profile_yaml(capsys):
    sugg = suggest_resources(FIXTURE_RUN / "benchmarks")  # a benchmarks folder works too
    assert "qa_make_exposures" in sugg  # QA benchmarks live under benchmarks/qa/
    block = yaml.safe_load(format_set_resources(sugg))
    assert block["set-resources"]["train_shred_cnn"] == {"mem_mb": 5000, "runtime": 21}
    assert cli_main(["resources", str(FIXTURE_RUN)]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["set-resources"]["qa_make_exposures"] == {"mem_mb": 500, "runtime": 5}
    assert cli_main(["resources", str(FIXTURE_RUN / "nothing")]) == 1


def test_profile_covers_every_heavy_rule(repo):
    prof = yaml.safe_load((repo / "profiles" / "slurm" / "config.yaml").read_text())
    assert "cpus_per_task" not in prof["default-resources"]  # threads -> --cpus-per-task
    heavy = {"render_field", "make_shred_training_set", "train_shred_cnn", "score_shreds",
             "make_blends", "train_blend_models", "evaluate_blends", "deblend", "cutouts",
             "assemble", "qa_make_exposures", "qa_extract_sources", "qa_train_som",
             "qa_train_cnn", "qa_grade_exposures"}
    res = prof["set-resources"]
    assert heavy <= set(res)
    for rule in heavy:
        assert res[rule]["mem_mb"] > 0 and res[rule]["runtime"] >= 5, rule
        assert "cpus_per_task" not in res[rule], rule
    # the GPU switch is off: no training rule asks for a GPU
    assert not any("gpu" in r or "gres" in r for r in res.values())
