"""Config validation: every problem is reported with the dotted key that is wrong."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from catclean.cli import main as cli_main
from catclean.config import (
    ConfigError,
    config_digest,
    config_reference,
    preset_settings,
    validate_config,
)


def test_default_config_is_valid_and_gets_defaults(default_config):
    cfg = validate_config(copy.deepcopy(default_config))
    assert cfg["results_dir"] == "results"
    assert cfg["sky"]["detection"]["deblend_cont"] == pytest.approx(0.0003)
    assert cfg["association"]["radius_kpc"] == 100.0


@pytest.mark.parametrize(
    ("path", "value", "expect"),
    [
        (("cuts", "r_max"), "bright", "cuts.r_max"),  # wrong type
        (("cuts", "r_max"), 35.0, "cuts.r_max"),  # out of range
        (("partition", "nside"), 33, "partition.nside"),  # not a power of two
        (("association", "radius_kpc"), -5, "association.radius_kpc"),
        (("sky", "detection", "deblend_cont"), 2.0, "sky.detection.deblend_cont"),
        (("surveys", "legacy", "provider"), "ftp", "surveys.legacy.provider"),
        (("seed",), -1, "seed"),
    ],
)
def test_bad_values_name_the_key(default_config, path, value, expect):
    cfg = copy.deepcopy(default_config)
    node = cfg
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert f"'{expect}'" in str(err.value)


def test_unknown_key_is_named(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["cuts"]["r_maximum"] = 21
    cfg["colour_cut"] = 1
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    msg = str(err.value)
    assert "cuts.r_maximum" in msg and "colour_cut" in msg


def test_missing_required_key_is_named(default_config):
    cfg = copy.deepcopy(default_config)
    del cfg["surveys"]["sdss"]["release"]
    with pytest.raises(ConfigError, match=r"surveys\.sdss\.release"):
        validate_config(cfg)


def test_digest_is_stable(default_config):
    a = validate_config(copy.deepcopy(default_config))
    b = validate_config(copy.deepcopy(default_config))
    assert config_digest(a) == config_digest(b)
    b["seed"] += 1
    assert config_digest(a) != config_digest(b)


def test_snakemake_refuses_bad_config_before_any_job(repo, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cuts:\n  r_max: 99\n")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile",
         str(repo / "config" / "config.yaml"), str(bad)],
        cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "cuts.r_max" in proc.stdout + proc.stderr


def test_presets_come_from_the_schema_and_merge_with_overrides(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["shreds"] = {**cfg.get("shreds", {}), "preset": "small",
                     "presets": {"small": {"max_epochs": 3}, "mine": {"width": 0.5}}}
    validate_config(cfg)
    small = preset_settings(cfg, "shreds")
    # the override wins, the rest of `small` and the other named presets stay
    assert small["max_epochs"] == 3 and small["preset"] == "small"
    assert small["input_size"] == 64 and small["width"] == 0.25
    assert cfg["shreds"]["presets"]["paper"]["width"] == 1.0
    # a user preset gets every field's default from $defs/preset
    assert cfg["shreds"]["presets"]["mine"]["width"] == 0.5
    assert "learning_rate" in cfg["shreds"]["presets"]["mine"]


def test_unknown_preset_is_named(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["shreds"] = {**cfg.get("shreds", {}), "preset": "huge"}
    with pytest.raises(ConfigError, match=r"shreds\.preset.*'huge'"):
        validate_config(cfg)


def test_validation_is_idempotent(default_config):
    once = validate_config(copy.deepcopy(default_config))
    twice = validate_config(copy.deepcopy(once))
    assert config_digest(once) == config_digest(twice)


def test_config_readme_is_generated_from_the_schema(repo):
    # config/README.md cannot drift from the schema: regenerate with `catclean config docs`
    assert (repo / "config" / "README.md").read_text() == config_reference()


def test_every_schema_key_has_a_description():
    missing = [line.split("|")[1].strip() for line in config_reference().splitlines()
               if line.startswith("| `") and line.rstrip().endswith("|  |")]
    assert not missing, f"schema keys without a description: {missing}"


def test_cli_overrides_and_names_bad_keys(capsys):
    assert cli_main(["config", "show", "--set", "cuts.r_max=20.5", "cuts.r_max"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == 20.5
    assert cli_main(["config", "show", "--set", "cuts.r_max=99"]) == 2
    assert "cuts.r_max" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("run_name", ".."),
        ("run_name", "a/b"),
        ("run_name", ".hidden"),
        ("results_dir", "r; echo INJECTED; #"),
        ("results_dir", "my results"),
        ("results_dir", "../outside"),
        ("results_dir", "a/../../b"),
        ("results_dir", "/tmp/elsewhere"),  # absolute, no results_root
        ("results_dir", "$(touch x)"),
    ],
)
def test_paths_refuse_traversal_and_shell_metacharacters(default_config, key, value):
    cfg = copy.deepcopy(default_config)
    cfg[key] = value
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_config(cfg)


def test_absolute_results_dir_under_results_root_is_allowed(default_config, tmp_path):
    cfg = copy.deepcopy(default_config)
    cfg["results_dir"] = str(tmp_path / "out")
    cfg["results_root"] = str(tmp_path)
    assert validate_config(cfg)["results_dir"] == str(tmp_path / "out")
