"""Blends presets: per-preset simulator overrides (``candels``: HST-like, paper 002 Sec. 2.1).

Fast: no training, a handful of GalSim renders.
"""

from pathlib import Path

import galsim
import numpy as np
import pytest

from catclean.blends.galaxies import GalaxySimConfig, make_galaxies, render
from catclean.blends.settings import stage_settings
from catclean.config import ConfigError, deep_merge, load_config

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


@pytest.fixture(scope="module")
def cfg():
    return load_config(CONFIG)


def _settings(cfg, preset):
    return stage_settings(deep_merge(cfg, {"blends": {"preset": preset}}))


def test_default_presets_keep_legacy_sim(cfg):
    for name in ("small", "large", "paper"):
        sim = _settings(cfg, name)["sim"]
        assert sim["pixel_scale"] == pytest.approx(0.262)
        assert sim["psf_fwhm"] == [1.1, 1.5]
        assert sim["noise_sigma"] == pytest.approx(0.01)
    assert cfg["blends"]["preset"] == "small"


def test_candels_preset_overrides_sim(cfg):
    s = _settings(cfg, "candels")
    sim = s["sim"]
    assert sim["pixel_scale"] == pytest.approx(0.06)  # WFC3/IR drizzled CANDELS mosaics
    assert 0.15 <= sim["psf_fwhm"][0] < sim["psf_fwhm"][1] <= 0.2  # F160W PSF ~0.18"
    assert sim["mag_range"][1] == pytest.approx(23.5)  # Dimauro+18 parent: F160W < 23.5
    assert sim["stamp"] == s["stamp"]
    # keys the preset leaves out keep the top-level values
    assert sim["morph_mix"] == cfg["blends"]["sim"]["morph_mix"]
    # the top-level config is not modified by resolving the preset
    assert cfg["blends"]["sim"]["pixel_scale"] == pytest.approx(0.262)


def test_candels_sim_is_rendered_at_hst_resolution(cfg):
    sim = _settings(cfg, "candels")["sim"]
    gcfg = GalaxySimConfig.from_config(sim)
    assert gcfg.pixel_scale == pytest.approx(0.06) and gcfg.psf_fwhm == (0.16, 0.2)
    gals = make_galaxies(12, gcfg, np.random.default_rng(5))
    t = gals.table
    assert gals.images.shape == (12, 2 * sim["stamp"], 2 * sim["stamp"])
    assert np.all((t["psf_fwhm"] >= 0.16) & (t["psf_fwhm"] <= 0.2))
    assert np.allclose(t["R_pix"], t["r_eff"] / np.sqrt(t["q"]) / 0.06)
    # stamp edges are pure noise of sigma noise_sigma / sqrt(2)
    edge = gals.images[:, :4, :].ravel()
    assert np.std(edge) == pytest.approx(sim["noise_sigma"] / np.sqrt(2), rel=0.1)
    # a point-like source has the HST PSF: FWHM 0.18" = 3 pixels (plus the pixel response
    # and the coarse half-maximum estimate on a pixelised image), not Legacy's 4-6 pixels
    row = t.iloc[0].copy()
    row["r_eff"], row["morph"], row["psf_fwhm"] = 1e-3, "disk", 0.18
    fwhm_hst = galsim.Image(render(row, gcfg, 64), scale=1.0).calculateFWHM()
    assert 3.0 <= fwhm_hst <= 3.8
    assert fwhm_hst * 0.06 < 0.25  # arcsec
    legacy = GalaxySimConfig.from_config(_settings(cfg, "small")["sim"])
    row["psf_fwhm"] = 1.3
    fwhm_leg = galsim.Image(render(row, legacy, 64), scale=1.0).calculateFWHM()
    assert 1.3 / 0.262 <= fwhm_leg <= 1.3 / 0.262 + 0.8


def test_preset_sim_override_is_validated():
    with pytest.raises(ConfigError, match="blends.presets.candels.sim"):
        load_config(CONFIG, {"blends": {"presets": {"candels": {"sim": {"pixscale": 0.06}}}}})
    with pytest.raises(ConfigError, match="pixel_scale"):
        load_config(CONFIG, {"blends": {"presets": {"candels": {"sim": {"pixel_scale": -1}}}}})
