"""Conda envs parse, pin exact versions and agree with pyproject ranges and the
constraints file; every rule names a conda env."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

CONDA_TO_PYPI = {"galsim": "galsim", "pyyaml": "pyyaml", "astropy-healpix": "astropy-healpix"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def constraints(repo):
    pins = {}
    for line in (repo / "requirements" / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, ver = line.split("==")
            pins[_norm(name)] = ver
    return pins


@pytest.fixture(scope="module")
def ranges(repo):
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    reqs = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["test"]
    return {_norm(Requirement(r).name): Requirement(r).specifier for r in reqs}


def _env_pins(path):
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for p in dep.get("pip", []):
                name, ver = p.split("==")
                pins[_norm(name)] = ver
        else:
            name, _, ver = dep.partition("=")
            pins[_norm(CONDA_TO_PYPI.get(name, name))] = ver
    return env, pins


def test_envs_are_pinned_and_agree(repo, constraints, ranges):
    files = sorted((repo / "envs").glob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        env, pins = _env_pins(path)
        assert "conda-forge" in env["channels"], path.name
        for name, ver in pins.items():
            assert ver, f"{path.name}: {name} is not pinned"
            if name in ("python", "pip"):
                continue
            assert name in constraints, f"{path.name}: {name} not in constraints.txt"
            assert ver == constraints[name], (
                f"{path.name}: {name}={ver} but constraints.txt pins {constraints[name]}")
            if name in ranges:
                assert Version(ver) in ranges[name], (
                    f"{path.name}: {name}={ver} outside pyproject range {ranges[name]}")


def test_constraints_satisfy_pyproject(constraints, ranges):
    for name, spec in ranges.items():
        assert name in constraints, f"{name} has no exact pin in constraints.txt"
        assert Version(constraints[name]) in spec, f"{name}=={constraints[name]} not in {spec}"


def test_every_rule_has_a_conda_env_and_lint_is_clean(repo):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo,
                          capture_output=True, text=True, timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Lints for rule" not in out, out[-3000:]
