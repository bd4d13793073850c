"""Conda envs parse, pin exact versions and agree with pyproject ranges and the
constraints file; every rule names a conda env, and that env provides every third-party
distribution the rule's script reaches (tools/env_imports.py: AST, transitively through
catclean, function-level imports included) and is the smallest env in envs/ that does."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.version import Version

sys.path.insert(0, str(REPO / "tools"))
import env_imports as EI  # noqa: E402

_norm = EI.norm


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
    assert not any(Requirement(r).name in ("dask", "astroquery")
                   for r in data["project"]["dependencies"]), "unused at run time (issue 14)"
    return {_norm(Requirement(r).name): Requirement(r).specifier for r in reqs}


def _env_pins(path):
    return yaml.safe_load(path.read_text()), EI.env_distributions(path)


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


# -- imports versus envs ------------------------------------------------------------------

@pytest.fixture(scope="module")
def envs(repo):
    return {p.name: EI.env_distributions(p) for p in sorted((repo / "envs").glob("*.yaml"))}


@pytest.fixture(scope="module")
def rule_needs(repo):
    """rule -> (env file name, {distribution: where it is imported}, problems)."""
    graph = EI.Graph()
    out = {}
    for rule, spec in EI.rules_from_smk(repo).items():
        if "script" in spec:
            dists, problems = EI.needed_distributions(spec["script"], graph)
            out[rule] = (spec["conda"].name if "conda" in spec else None, dists, problems)
    return out


def test_rule_parse_matches_snakemake(repo, rule_needs):
    """The .smk parse sees every rule Snakemake lists (default config: every stage on)."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules"], cwd=repo,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    parsed = EI.rules_from_smk(repo)
    assert listed - {"all"} <= set(parsed), listed - set(parsed)
    scripted = {r for r in listed if "script" in parsed.get(r, {})}
    assert len(scripted) >= 35 and scripted <= set(rule_needs)


def test_every_rule_env_provides_what_its_script_imports(rule_needs, envs):
    missing = {}
    for rule, (env_name, dists, problems) in rule_needs.items():
        assert env_name in envs, f"rule {rule}: conda env {env_name} not in envs/"
        assert not problems, f"rule {rule}: {problems}"
        lacking = {d: sorted(w)[:2] for d, w in dists.items() if not EI.provides(envs[env_name], d)}
        if lacking:
            missing[rule] = (env_name, lacking)
    assert not missing, "envs lack what rules import: " + "; ".join(
        f"{r} ({e}) needs {lack}" for r, (e, lack) in sorted(missing.items()))


def test_every_rule_names_the_smallest_env(rule_needs, envs):
    wrong = {rule: (env_name, EI.smallest_envs(dists, envs))
             for rule, (env_name, dists, _) in rule_needs.items()
             if env_name not in EI.smallest_envs(dists, envs)}
    assert not wrong, f"rule: (its env, the smallest envs that cover it): {wrong}"
    for rule, (env_name, dists, _) in rule_needs.items():
        if "tensorflow-cpu" in envs[env_name]:
            assert "keras" in dists or "tensorflow-cpu" in dists, f"{rule}: TensorFlow unused"
    used = {env_name for env_name, _, _ in rule_needs.values()}
    assert used == set(envs), f"envs no rule uses: {set(envs) - used}"


def test_lazy_imports_count_and_light_rules_stay_light(rule_needs):
    needs = {rule: set(d) for rule, (_, d, _) in rule_needs.items()}
    # function-level imports: keras only inside catclean.shreds.score / .model functions
    assert {"keras", "tensorflow-cpu"} <= needs["score_shreds"]
    assert "matplotlib" in needs["make_blends"] and "requests" in needs["cutouts"]
    assert "scikit-image" in needs["make_morphology_fields"]  # Otsu masks (paper 003)
    for rule in ("morphology_columns", "normalize", "cuts", "assemble", "map_cutouts",
                 "som_columns", "qa_train_som"):
        assert not needs[rule] & {"keras", "tensorflow-cpu", "galsim"}, rule


def test_removing_a_needed_package_fails(rule_needs, envs):
    """What the imports test catches: sky.yaml without galsim no longer runs render_field,
    ml.yaml without keras no longer runs score_shreds."""
    for rule, dist in (("render_field", "galsim"), ("score_shreds", "keras"),
                       ("cutouts", "requests"), ("qa_train_som", "scikit-learn")):
        env_name, dists, _ = rule_needs[rule]
        env = {k: v for k, v in envs[env_name].items() if k != dist}
        assert dist in dists and not EI.provides(env, dist), (rule, dist)


def test_envs_install_catclean_and_scripts_leave_sys_path(repo):
    """Each env installs catclean with its post-deploy script (Snakemake copies env files
    to .snakemake/conda/, so a relative `-e ../` in a pip section would not point here)."""
    common = (repo / "workflow" / "rules" / "common.smk").read_text()
    assert 'os.environ.setdefault("CATCLEAN_ROOT", workflow.basedir)' in common
    for env in sorted((repo / "envs").glob("*.yaml")):
        deploy = env.with_name(env.stem + ".post-deploy.sh")
        assert deploy.exists(), f"{env.name} has no {deploy.name}"
        text = deploy.read_text()
        assert "pip install --no-deps -e \"${CATCLEAN_ROOT" in text, deploy.name
        assert "catclean" not in yaml.safe_load(env.read_text())["dependencies"]
    for script in sorted((repo / "scripts").glob("*.py")):
        assert "sys.path" not in script.read_text(), f"{script.name} edits sys.path"
