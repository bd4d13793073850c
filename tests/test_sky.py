"""The synthetic sky: NSA-like hosts, rendering, detection, and shreds that emerge
from deblending (not painted in)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from catclean.catalogs.schema import NATIVE_COLUMNS
from catclean.cosmology import make_cosmology
from catclean.sky.fields import host_field
from catclean.sky.hosts import NSA_COLUMNS, synthetic_hosts
from catclean.sky.native import WRITERS

SEED = 7


@pytest.fixture(scope="module")
def cosmo():
    return make_cosmology({"H0": 70.0, "Om0": 0.27})


@pytest.fixture(scope="module")
def hosts(cosmo):
    # nearby massive discs: big on the sky, knotty -> shreds
    return synthetic_hosts(4, (150, 151), (1, 2), (0.015, 0.02), (10.6, 10.9), SEED, cosmo,
                           nan_redshift_hosts=1)


def test_hosts_have_nsa_columns_and_sane_values(hosts, cosmo):
    for col in NSA_COLUMNS:
        assert col in hosts.columns
    ok = hosts.dropna(subset=["Z"])
    assert len(ok) == 3 and hosts["Z"].isna().sum() == 1
    assert (ok.Z < 0.05).all()
    # half-light radii of MW-like discs at z~0.02: 3-8 kpc -> ~7-25 arcsec
    r50_kpc = ok.SERSIC_TH50 * cosmo.kpc_proper_per_arcmin(ok.Z).value / 60
    assert r50_kpc.between(2, 10).all()
    assert ok.SERSIC_BA.between(0.1, 1).all()
    assert (ok.ELPETRO_MASS > 1e9).all()
    # r-band magnitude of a ~1e10.7 Msun galaxy at 85 Mpc is ~13-14
    mag_r = 22.5 - 2.5 * np.log10([f[4] for f in ok.SERSIC_FLUX])
    assert np.all((mag_r > 11.5) & (mag_r < 15.5))


def test_hosts_are_reproducible(cosmo):
    a = synthetic_hosts(4, (0, 10), (0, 10), (0.01, 0.05), (10, 11), 3, cosmo)
    b = synthetic_hosts(4, (0, 10), (0, 10), (0.01, 0.05), (10, 11), 3, cosmo)
    c = synthetic_hosts(4, (0, 10), (0, 10), (0.01, 0.05), (10, 11), 4, cosmo)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.RA, c.RA)


SKY = {"field_max_pix": 900, "background_density": 30000, "star_density": 3000}


@pytest.fixture(scope="module")
def legacy_field(hosts):
    # the most star-forming disc among the hosts (early types have no knots to shred)
    nsaid = int(hosts.dropna(subset=["Z"]).sort_values("sim_knot_frac").NSAID.iloc[-1])
    return nsaid, *host_field(hosts, nsaid, "legacy", SEED, 100.0, sky=SKY)


def test_native_legacy_columns(legacy_field):
    _, fld, cat = legacy_field
    for col in NATIVE_COLUMNS["legacy"]:
        assert col in cat.columns
    assert cat["ls_id"].is_unique
    assert set(cat["type"]) <= {"PSF", "REX", "EXP", "DEV", "SER", "DUP"}
    # fluxes are in nanomaggies: the host (brightest) is a ~13-14 mag galaxy
    assert 22.5 - 2.5 * np.log10(cat["flux_r"].max()) < 15.5
    assert (cat["mw_transmission_r"] < 1).all() and (cat["mw_transmission_r"] > 0.8).all()


def test_field_noise_matches_depth(legacy_field):
    _, fld, _ = legacy_field
    # empty-sky pixel noise reproduces the 5-sigma depth within 10%
    sky = fld.images["r"][(fld.owner == -1) & (fld.ivar["r"] > 0)]
    expected = 1 / np.sqrt(np.median(fld.ivar["r"][fld.ivar["r"] > 0]))
    assert np.std(sky) == pytest.approx(expected, rel=0.1)


def test_shreds_emerge_inside_host_light(legacy_field, hosts):
    nsaid, fld, cat = legacy_field
    counts = cat.truth_label.value_counts()
    assert counts.get("shred", 0) >= 8, counts.to_dict()
    assert counts.get("galaxy", 0) > counts.get("shred", 0)
    shreds = cat[cat.truth_label == "shred"]
    host_id = nsaid * 1000
    # most shreds are fragments of the host (not of background galaxies)
    from_host = (shreds.truth_id == host_id).mean()
    assert from_host >= 0.5
    # and they sit inside the host's light: within 4 half-light radii of its centre,
    # measured along the projected disc ellipse (major-axis radius r50 / sqrt(b/a))
    h = hosts.set_index("NSAID").loc[nsaid]
    east = ((shreds.ra - h.RA) * np.cos(np.radians(h.DEC)) * 3600)[shreds.truth_id == host_id]
    north = ((shreds.dec - h.DEC) * 3600)[shreds.truth_id == host_id]
    pa = np.radians(h.SERSIC_PHI)
    major = east * np.sin(pa) + north * np.cos(pa)
    minor = east * np.cos(pa) - north * np.sin(pa)
    r_ell = np.hypot(major, minor / h.SERSIC_BA)
    assert (r_ell < 4 * h.SERSIC_TH50 / np.sqrt(h.SERSIC_BA)).all(), r_ell.max()
    # the host itself is catalogued once, as a galaxy, near its centre
    primary = cat[(cat.truth_id == host_id) & (cat.truth_label == "galaxy")]
    assert len(primary) == 1


def test_less_aggressive_deblending_gives_fewer_shreds(hosts, legacy_field):
    nsaid, _, aggressive = legacy_field
    sky = {**SKY, "detection": {"deblend_cont": 0.005}}
    _, gentle = host_field(hosts, nsaid, "legacy", SEED, 100.0, sky=sky)
    n_aggr = int((aggressive.truth_label == "shred").sum())
    n_gentle = int((gentle.truth_label == "shred").sum())
    assert n_gentle < 0.5 * n_aggr, (n_aggr, n_gentle)


def test_field_rendering_is_reproducible(hosts, legacy_field):
    nsaid, fld, cat = legacy_field
    fld2, cat2 = host_field(hosts, nsaid, "legacy", SEED, 100.0, sky=SKY)
    np.testing.assert_array_equal(fld.images["g"], fld2.images["g"])
    pd.testing.assert_frame_equal(cat, cat2)


@pytest.mark.parametrize("survey", ["sdss", "ps1"])
def test_other_surveys_native_columns(hosts, survey):
    nsaid = int(hosts.NSAID.iloc[1])
    _, cat = host_field(hosts, nsaid, survey, SEED, 100.0, sky={**SKY, "field_max_pix": 500})
    for col in NATIVE_COLUMNS[survey]:
        assert col in cat.columns, col
    assert cat["objID"].is_unique
    assert len(cat) > 8
    assert survey in WRITERS


def test_nan_redshift_host_cannot_be_rendered(hosts):
    nsaid = int(hosts.NSAID.iloc[-1])
    with pytest.raises(ValueError, match="no valid redshift"):
        host_field(hosts, nsaid, "legacy", SEED, 100.0, sky=SKY)
