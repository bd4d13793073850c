"""Shared test fixtures: repository paths and a tiny workflow config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def default_config() -> dict:
    with open(REPO / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


def tiny_overrides(run_name: str = "tiny") -> dict:
    """Overrides that shrink the default config to a seconds-long catalog-only run."""
    return {
        "run_name": run_name,
        "hosts": {"provider": "synthetic", "z_range": [0.03, 0.05],
                  "log_mass_range": [10.3, 10.8],
                  "synthetic": {"n_hosts": 3, "ra_range": [150.0, 150.6],
                                "dec_range": [1.0, 1.6], "nan_redshift_hosts": 1}},
        "sky": {"field_max_pix": 700, "background_density": 30000},
        "cutouts": {"enabled": False}, "shreds": {"enabled": False},
        "qa": {"enabled": False}, "blends": {"enabled": False},
        "morphology": {"enabled": False}, "som": {"enabled": False},
    }
