"""Config validation: every problem is reported with the dotted key that is wrong."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from catclean.config import ConfigError, config_digest, validate_config


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
