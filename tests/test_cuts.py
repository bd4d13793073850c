"""SAGA-style cuts (paper 001 Sec. 3.1): each named cut on rows with known numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from catclean.cosmology import make_cosmology
from catclean.cuts import CUTS, apply_cuts, associate_hosts, cutflow
from catclean.cuts.cuts import Cut

PARAMS = {"r_max": 21.0, "sb_min": 18.5, "sb_slope": 0.7, "gr_max": 0.90, "gr_slope": 0.06,
          "mag_err_max": 0.2, "fracmasked_max": 0.35, "fracflux_max": 4.0, "rchisq_max": 10.0,
          "rchisq_any_max": 4.0, "fracin_any_min": 0.7}


def legacy_row(**kw):
    """A clean Legacy dwarf-galaxy candidate passing every cut."""
    row = {"survey": "legacy", "ra": 150.0, "dec": 2.0,
           "mag_r": 19.0, "mag_g": 19.4, "mag_z": 18.7,
           "magerr_g": 0.02, "magerr_r": 0.02, "magerr_z": 0.03,
           "r_eff": 2.0, "mu_eff": 19.0 + 2.5 * np.log10(2 * np.pi * 4.0), "sigma_mu": 0.05,
           "gr": 0.4, "sigma_gr": 0.03, "ls_type": "EXP"}
    for b in "grz":
        row.update({f"ls_nobs_{b}": 3, f"ls_allmask_{b}": 0, f"ls_fracmasked_{b}": 0.0,
                    f"ls_fracflux_{b}": 0.1, f"ls_rchisq_{b}": 1.2, f"ls_fracin_{b}": 1.0})
    row.update(kw)
    return row


def run(rows, survey="legacy"):
    return apply_cuts(pd.DataFrame(rows), PARAMS, survey)


def test_clean_candidate_passes_everything():
    out = run([legacy_row()])
    assert bool(out["passes_cuts"].iloc[0])
    assert out["cut_reason"].iloc[0] == ""


@pytest.mark.parametrize(("change", "failing"), [
    ({"mag_r": 21.01}, "r_max"),
    # mu_eff + sigma_mu - 0.7 (r - 14) = 20.0 + 0.05 - 0.7*5 = 16.55 < 18.5
    ({"mu_eff": 20.0}, "surface_brightness"),
    # (g-r) - sigma_gr + 0.06 (r - 14) = 0.9 - 0.03 + 0.3 = 1.17 >= 0.9
    ({"gr": 0.9}, "color"),
    ({"ls_type": "PSF"}, "galaxy_type"),
    ({"ls_type": "DUP"}, "galaxy_type"),
    ({"r_eff": 0.0}, "has_size"),
    ({"ls_nobs_z": 0}, "nobs"),
    ({"mag_z": np.nan}, "dered_mag_finite"),
    ({"ls_allmask_g": 2}, "allmask"),
    ({"ls_fracmasked_r": 0.35}, "fracmasked"),
    ({"ls_fracflux_z": 4.5}, "fracflux"),
    ({"ls_rchisq_g": 10.5}, "rchisq"),
    ({"ls_rchisq_g": 5.0, "ls_rchisq_r": 6.0, "ls_rchisq_z": 4.1}, "rchisq_any"),
    ({"ls_fracin_g": 0.6, "ls_fracin_r": 0.7, "ls_fracin_z": 0.5}, "fracin_any"),
    ({"magerr_g": 0.25}, "mag_err"),
])
def test_each_cut_fails_on_its_criterion(change, failing):
    out = run([legacy_row(), legacy_row(**change)])
    assert bool(out[f"cut_{failing}"].iloc[0])
    assert not bool(out[f"cut_{failing}"].iloc[1])
    assert not bool(out["passes_cuts"].iloc[1])
    assert len(out) == 2  # nothing is dropped


def test_surface_brightness_boundary_uses_sigma_and_slope():
    # exactly at the boundary: 18.5 + 0.7 (r-14) - sigma_mu  -> fails (strict >)
    r, sig = 18.0, 0.1
    mu_edge = 18.5 + 0.7 * (r - 14) - sig
    out = run([legacy_row(mag_r=r, sigma_mu=sig, mu_eff=mu_edge + 1e-6),
               legacy_row(mag_r=r, sigma_mu=sig, mu_eff=mu_edge - 1e-6)])
    assert out["cut_surface_brightness"].tolist() == [True, False]


def test_cuts_compose_with_and():
    by_name = {c.name: c for c in CUTS}
    both = by_name["r_max"] & by_name["color"]
    df = pd.DataFrame([legacy_row(), legacy_row(mag_r=22.0), legacy_row(gr=1.5)])
    assert both(df, PARAMS, "legacy").tolist() == [True, False, False]
    assert isinstance(both, Cut) and "r_max" in both.name


def test_sdss_analogues():
    base = {"survey": "sdss", "ra": 150.0, "dec": 2.0, "mag_r": 19.0, "mag_g": 19.4,
            "mag_z": 18.7, "magerr_g": 0.02,
            "magerr_r": 0.02, "magerr_z": 0.05, "r_eff": 2.0, "mu_eff": 23.0, "sigma_mu": 0.05,
            "gr": 0.4, "sigma_gr": 0.03, "sdss_type": 3, "sdss_clean": 1,
            "sdss_flags": 0x10000000, "sdss_petroMagErr_g": 0.02, "sdss_petroMagErr_r": 0.02,
            "sdss_petroMagErr_z": 0.05}
    rows = [base, {**base, "sdss_type": 6}, {**base, "sdss_flags": 0x10000000 | 0x40000},
            {**base, "sdss_flags": 0x4}]
    out = apply_cuts(pd.DataFrame(rows), PARAMS, "sdss")
    assert out["passes_cuts"].tolist() == [True, False, False, False]
    assert out["cut_reason"].tolist() == ["", "galaxy_type", "allmask", "fracin_any"]
    # Legacy-only criteria are not applicable to SDSS: they pass and the cut flow says n/a
    flow = cutflow(out, "sdss")
    assert flow.set_index("step").loc["rchisq", "applies"] == "n/a"


def test_cutflow_is_cumulative():
    rows = [legacy_row(), legacy_row(mag_r=22), legacy_row(gr=1.5), legacy_row(mag_r=22, gr=2)]
    flow = cutflow(run(rows), "legacy").set_index("step")
    assert flow.loc["input", "n_surviving"] == 4
    assert flow.loc["r_max", "n_surviving"] == 2
    assert flow.loc["color", "n_pass_alone"] == 2
    assert flow.loc["color", "n_surviving"] == 1
    assert (np.diff(flow["n_surviving"].to_numpy()) <= 0).all()


def test_every_cut_is_documented_with_units():
    doc = yaml.safe_load((Path(__file__).parents[1] / "src/catclean/cuts/cuts.yaml").read_text())
    documented = {c["name"] for c in doc["cuts"]}
    assert {c.name for c in CUTS} | {"host_radius"} == documented
    for c in doc["cuts"]:
        assert c["definition"] and c["columns"], c["name"]
        assert set(c["surveys"]) == {"legacy", "sdss", "ps1"}, c["name"]


def test_host_association_in_physical_kpc():
    cosmo = make_cosmology({"H0": 70, "Om0": 0.27})
    hosts = pd.DataFrame({"NSAID": [1, 2, 3], "RA": [10.0, 10.5, 11.0], "DEC": [0.0, 0.0, 0.0],
                          "Z": [0.02, 0.05, np.nan]})
    kpc_per_deg = cosmo.kpc_proper_per_arcmin(0.02).value * 60
    d = 80.0 / kpc_per_deg  # 80 kpc from host 1
    src = pd.DataFrame({"ra": [10.0 + d, 10.0 + 2 * d, 10.9], "dec": [0.0, 0.0, 0.0]})
    out = associate_hosts(src, hosts, 100.0, cosmo)
    assert out["host_nsaid"].tolist()[0] == 1
    assert out["host_dist_kpc"].iloc[0] == pytest.approx(80.0, rel=1e-3)
    assert out["cut_host_radius"].tolist()[:2] == [True, False]
    # the NaN-redshift host is never associated
    assert 3 not in out["host_nsaid"].tolist()
