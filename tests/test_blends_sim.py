"""Blends stage: GalSim galaxies, pairing rules (paper 002 Sec. 2) and the sep baseline."""

import numpy as np
import pytest

from catclean.blends import MORPHOLOGIES, stage
from catclean.blends.blending import draw_pairs, make_blend_set, split_galaxies
from catclean.blends.galaxies import GalaxySimConfig, make_galaxies
from catclean.blends.metrics import flux_to_mag, iou, summarize
from catclean.blends.photometry import sep_baseline, sep_baseline_one
from catclean.blends.settings import stage_settings
from catclean.config import default_config

BASELINE = default_config()["blends"]["baseline"]  # Table 3


@pytest.fixture(scope="module")
def gals():
    cfg = GalaxySimConfig.from_preset("small", stamp=64)
    return make_galaxies(160, cfg, np.random.default_rng(3))


def test_galaxies_in_nanomaggies_with_truth(gals):
    t = gals.table
    assert set(t["morph"]) == set(MORPHOLOGIES)
    assert t["ok"].mean() > 0.95
    ok = t[t["ok"]]
    # Kron flux on the isolated stamp recovers most of the rendered flux (Sec. 3 truth)
    ratio = ok["flux_iso"] / ok["flux_model"]
    assert 0.8 < ratio.median() < 1.02
    assert ratio.min() > 0.4 and ratio.max() < 1.3
    # the image sums to the model flux in nanomaggies (zero point 22.5), up to noise
    s = gals.images.sum(axis=(1, 2))
    sig_sum = 0.01 / np.sqrt(2) * gals.images.shape[1]  # noise of the stamp sum
    assert np.all(np.abs(s - t["flux_model"]) < 0.03 * t["flux_model"] + 5 * sig_sum)
    assert np.allclose(ok["mag_iso"], flux_to_mag(ok["flux_iso"]))
    # segmentation maps: centred and non-empty
    c = gals.images.shape[1] // 2
    assert gals.masks[t["ok"].to_numpy(), c - 1:c + 1, c - 1:c + 1].any(axis=(1, 2)).mean() > 0.95


def test_pairs_follow_paper_rules(gals):
    t = gals.table
    rng = np.random.default_rng(0)
    ids = t.loc[t["ok"], "gal_id"].to_numpy()
    tr, te = split_galaxies(ids, 0.25, rng)
    assert not set(tr) & set(te) and len(tr) + len(te) == len(ids)
    p = draw_pairs(t, tr, 400, 64, rng)
    assert set(p["cen"]) | set(p["comp"]) <= set(tr)  # no test galaxy in a training blend
    mag = t["mag_iso"].to_numpy()
    assert np.all(np.abs(mag[p["cen"]] - mag[p["comp"]]) < 2.0)
    assert np.all(p["cen"] != p["comp"])
    R = np.maximum(t["R_pix"].to_numpy()[p["cen"]], t["R_pix"].to_numpy()[p["comp"]])
    assert np.allclose(R, p["R_pix"])
    # separation in [0.5 R, stamp / 2] up to the rounding to whole pixels
    assert np.all(p["sep_pix"] >= np.minimum(0.5 * R, 32) - 0.75)
    assert np.all(p["sep_pix"] <= 32 * np.sqrt(2) + 1e-9)
    assert np.all(np.abs(p["dx"]) <= 32) and np.all(np.abs(p["dy"]) <= 32)


def test_blend_is_pixel_sum_and_masks_follow(gals):
    t = gals.table
    ids = t.loc[t["ok"], "gal_id"].to_numpy()
    b = make_blend_set(gals, ids, 50, 64, np.random.default_rng(1))
    assert b["images"].shape == (50, 64, 64) and b["masks"].shape == (50, 64, 64, 2)
    i = 7
    c, k = b["gal_id"][i]
    dx, dy = b["dx"][i], b["dy"][i]
    o = 32
    expect = gals.images[c, o:o + 64, o:o + 64] + gals.images[k, o - dy:o - dy + 64,
                                                              o - dx:o - dx + 64]
    np.testing.assert_allclose(b["images"][i], expect)
    # the companion mask is centred on the companion position
    m = b["masks"][..., 1].astype(float)
    yy, xx = np.mgrid[:64, :64]
    full = m.sum(axis=(1, 2)) > 0
    w = m.sum(axis=(1, 2))[full]
    cx = (m * xx).sum(axis=(1, 2))[full] / w
    inside = (np.abs(b["dx"][full]) < 20) & (np.abs(b["dy"][full]) < 20)
    assert np.median(np.abs(cx - b["comp_xy"][full, 0])[inside]) < 1.5


def test_simulate_is_seeded_and_split_by_galaxy():
    st = stage_settings(default_config({"blends": {
        "presets": {"t": {"n_galaxies": 60, "n_train": 50, "n_test": 20}}, "preset": "t"}}))
    a = stage.simulate(st, 11)
    b = stage.simulate(st, 11)
    np.testing.assert_array_equal(a["train"]["images"], b["train"]["images"])
    np.testing.assert_array_equal(a["test"]["gal_id"], b["test"]["gal_id"])
    train_gals = set(a["train"]["gal_id"].ravel()) | set(a["val"]["gal_id"].ravel())
    assert not train_gals & set(a["test"]["gal_id"].ravel())
    assert len(a["val"]["flux"]) == 10 and len(a["train"]["flux"]) == 40
    c = stage.simulate(st, 12)
    assert not np.array_equal(a["train"]["images"], c["train"]["images"])


def test_sep_baseline_cases(gals):
    t = gals.table
    ok = t[t["ok"]].sort_values("mag_iso")
    c, k = ok["gal_id"].iloc[10], ok["gal_id"].iloc[12]
    o = 32

    def blend(dx, dy):
        return (gals.images[c, o:o + 64, o:o + 64]
                + gals.images[k, o - dy:o - dy + 64, o - dx:o - dx + 64])

    # well separated: exactly two, fluxes assigned to the right galaxy (rule i)
    flux, n, mode, case = sep_baseline_one(blend(18, 14), (31.5 + 18, 31.5 + 14),
                                           t["R_pix"][c], sigma=0.01, **BASELINE)
    assert case == "two" and n == 2 and mode == "cold"
    np.testing.assert_allclose(flux, [t["flux_iso"][c], t["flux_iso"][k]], rtol=0.25)
    # on top of each other: one object (rule ii) -> assigned to the central galaxy
    flux, n, mode, case = sep_baseline_one(blend(1, 0), (32.5, 31.5), 10.0, sigma=0.01,
                                           **BASELINE)
    assert case == "under" and n == 1 and mode == "hot"
    assert np.isfinite(flux[0]) and np.isnan(flux[1])
    # ... or to the companion if the centroid is farther than 0.5 R_cen from the centre
    flux, n, mode, case = sep_baseline_one(gals.images[k, o - 5:o + 59, o - 5:o + 59],
                                           (36.5, 36.5), 2.0, sigma=0.01, **BASELINE)
    assert case == "under" and np.isnan(flux[0]) and np.isfinite(flux[1])
    # empty and NaN stamps never crash
    r = sep_baseline(np.stack([np.zeros((64, 64)), np.full((64, 64), np.nan)]),
                     np.array([[40.0, 40.0]] * 2), np.array([3.0, 3.0]), **BASELINE)
    assert list(r.case) == ["under", "under"] and np.isnan(r.flux).all()


def test_metrics_definitions():
    s = summarize([20.1, 19.0, np.nan, 21.0], [20.0, 20.0, 20.0, 21.0],
                  [1, 2, np.nan, 3], [1, 1, 1, 3])
    assert s["n"] == 4 and s["n_measured"] == 3
    assert s["outlier_frac"] == pytest.approx(1 / 3)
    assert s["outlier_frac_all"] == pytest.approx(2 / 4)
    assert s["mape"] == pytest.approx(100 * (0 + 1 + 0) / 3)
    a = np.zeros((1, 4, 4, 2))
    b = np.zeros((1, 4, 4, 2))
    a[0, :2, :, 0] = 1
    b[0, :1, :, 0] = 1
    v = iou(a, b)
    assert v[0, 0] == pytest.approx(0.5) and np.isnan(v[0, 1])
