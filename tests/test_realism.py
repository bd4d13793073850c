"""The realism measure (classifier two-sample test) and the gated realistic sky."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED

REAL = SHARED / "real" / "legacy_dr9_grz_jpeg"

needs_real = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real cutouts not found at {REAL} (../shared/real beside the "
                              "repository); the two-sample tests need them")


@pytest.fixture(scope="module")
def real_set():
    from catclean.shreds.realism import image_statistics, load_image_dir

    imgs = load_image_dir(REAL, n=200, seed=5)
    return imgs, image_statistics(imgs)


def test_image_statistics_columns():
    from catclean.shreds.realism import image_statistics

    rng = np.random.default_rng(0)
    imgs = rng.integers(20, 60, (3, 128, 128, 3)).astype(np.uint8)
    imgs[:, 60:68, 60:68] = 250
    st = image_statistics(imgs)
    assert len(st) == 3
    for c in ("sky_R", "noise_G", "centre_B_G", "centre_sb", "bright_frac_20", "n_peaks",
              "prof_0_3", "blockiness", "peak_offset"):
        assert c in st
    assert (st.centre_sb > 100).all() and st.peak_offset.max() < 3
    with pytest.raises(ValueError):
        image_statistics(imgs[..., 0])


@needs_real
def test_separates_clearly_different_sets(real_set):
    """Real cutouts vs the same kind of cutouts, re-rendered smoother and brighter: AUC > 0.9."""
    from scipy import ndimage

    from catclean.shreds.realism import image_statistics, two_sample_auc

    imgs, _ = real_set
    a, b = imgs[:100], imgs[100:]
    changed = ndimage.gaussian_filter(a.astype(np.float32), (0, 1.2, 1.2, 0))
    changed = np.clip(changed * 1.1 + 12, 0, 255).astype(np.uint8)
    res = two_sample_auc(None, None, method="trees", folds=4, seed=1,
                         stats_a=image_statistics(changed), stats_b=image_statistics(b))
    assert res["auc"] > 0.9, res
    assert res["n_a"] == 100 and res["n_b"] == 100
    # every image gets an out-of-fold probability, and the changed ones score higher
    p_a, p_b = res["p_a"], res["p_b"]
    assert p_a.shape == (100,) and p_b.shape == (100,)
    assert np.all((p_a >= 0) & (p_a <= 1)) and np.all((p_b >= 0) & (p_b <= 1))
    assert np.median(p_a) - np.median(p_b) > 0.5, (np.median(p_a), np.median(p_b))
    fi = res["feature_importance"]
    assert isinstance(fi, pd.DataFrame) and {"feature", "importance", "auc_1d"} <= set(fi)


@needs_real
def test_does_not_separate_two_halves(real_set):
    from catclean.shreds.realism import two_sample_auc

    _, st = real_set
    h = np.random.default_rng(3).permutation(len(st))
    res = two_sample_auc(None, None, method="trees", folds=4, seed=2, importance_repeats=0,
                         stats_a=st.iloc[h[:100]].reset_index(drop=True),
                         stats_b=st.iloc[h[100:]].reset_index(drop=True))
    assert abs(res["auc"] - 0.5) < 0.1, res


@needs_real
def test_cnn_two_sample(real_set):
    """The tiny CNN sees an obvious difference (a bright sky in every image)."""
    pytest.importorskip("keras")
    from catclean.shreds.realism import two_sample_auc

    imgs, _ = real_set
    a, b = imgs[:80].copy(), imgs[80:160]
    a = np.clip(a.astype(int) + 70, 0, 255).astype(np.uint8)
    res = two_sample_auc(a, b, method="cnn", folds=2, seed=0, epochs=4)
    assert res["auc"] > 0.9, res
    assert res["feature_importance"] is None


def test_plots(tmp_path):
    from catclean.shreds.realism import image_statistics, plot_gallery, plot_statistics

    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (6, 128, 128, 3)).astype(np.uint8)
    b = rng.integers(0, 100, (5, 128, 128, 3)).astype(np.uint8)
    sa, sb = image_statistics(a), image_statistics(b)
    assert plot_statistics(sa, sb, tmp_path / "h.png", columns=["sky_R", "n_peaks"]).exists()
    assert plot_gallery(a, b, tmp_path / "g.png", n=4, titles_a=["x"] * 6).exists()


def test_extremes_pick_the_surest_verdicts(tmp_path):
    """The extremes gallery shows the most surely synthetic stamps of the synthetic set and
    the most surely real ones of the real set, surest first; unscored images last."""
    from catclean.shreds.realism import extreme_indices, plot_extremes

    p_a = np.array([0.2, 0.9, np.nan, 0.5, 0.95])
    p_b = np.array([0.1, 0.7, 0.05, np.nan])
    ia, ib = extreme_indices(p_a, p_b, 3)
    assert ia.tolist() == [4, 1, 3] and ib.tolist() == [2, 0, 1]
    assert extreme_indices(p_a, p_b, 9)[0].tolist() == [4, 1, 3, 0, 2]
    rng = np.random.default_rng(2)
    a = rng.integers(0, 255, (5, 128, 128, 3)).astype(np.uint8)
    b = rng.integers(0, 100, (4, 128, 128, 3)).astype(np.uint8)
    path = plot_extremes(a, p_a, b, p_b, tmp_path / "x.png", n=3, titles_a=list("gsgsg"))
    assert path.stat().st_size > 5_000


def test_realism_options_default_is_original_sky():
    from catclean.sky.render import REALISM_PRESETS, realism_options

    assert realism_options(None) == {} and realism_options("none") == {}
    assert realism_options("viewer") == REALISM_PRESETS["viewer"]
    assert realism_options({"preset": "viewer", "jpeg_quality": 80})["jpeg_quality"] == 80
    with pytest.raises(ValueError):
        realism_options("nope")


def test_jpeg_roundtrip():
    from catclean.cutouts.rgb import jpeg_roundtrip

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (128, 128, 3)).astype(np.uint8)
    out = jpeg_roundtrip(img, 90)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert 0 < np.abs(out.astype(int) - img).mean() < 60


def test_realistic_host_morphologies():
    """Every morphology renders a finite, positive profile with the requested flux."""
    import galsim

    from catclean.sky.morphology import MORPHS, host_morphology, host_profile

    seen = set()
    for seed in range(40):
        for bf in (0.2, 0.6):
            m = host_morphology(seed, bf)
            seen.add(m["kind"])
            if seed % 8:
                continue
            obj = pd.Series({"seed": seed, "bulge_frac": bf, "knot_frac": 0.0 if bf > 0.5
                             else 0.15, "r_e": 6.0, "q": 0.3 + 0.02 * seed, "pa": 30.0,
                             "knot_size": 0.4, "n_knots": 40, "bulge_re": 1.2})
            prof = host_profile(obj, "g", 10.0, 0.262)
            img = prof.drawImage(nx=96, ny=96, scale=0.262, method="no_pixel").array
            assert np.isfinite(img).all() and img.sum() > 0
            assert isinstance(prof, galsim.GSObject)
    assert seen == set(MORPHS)


def test_knot_colour_moves_light_between_disc_and_knots_at_fixed_flux():
    """knot_colour (g-r, r-z) recolours a host's knots and keeps the host's flux per band:
    bluer knots take more of the g light, the disc the rest."""
    from catclean.sky.morphology import host_morphology, host_profile

    seed = next(s for s in range(100) if host_morphology(s, 0.2)["kind"] == "flocculent")
    obj = pd.Series({"seed": seed, "bulge_frac": 0.2, "knot_frac": 0.2, "r_e": 6.0, "q": 0.8,
                     "pa": 30.0, "knot_size": 0.3, "n_knots": 60, "bulge_re": 1.0})

    def g_image(knot_colour):
        prof = host_profile(obj, "g", 10.0, 0.262, knot_colour=knot_colour)
        return prof.drawImage(nx=128, ny=128, scale=0.262, method="no_pixel").array

    base, blue = g_image(None), g_image((-0.3, -0.15))
    assert base.sum() == pytest.approx(blue.sum(), rel=0.02)  # the host's g flux is kept
    knots = blue > np.percentile(blue, 99.5)  # the brightest pixels sit on knots
    assert blue[knots].sum() > 1.1 * base[knots].sum()
    assert blue[~knots].sum() < base[~knots].sum()


def test_lanczos3_sample_keeps_flat_sky_and_white_noise():
    """The viewer's Lanczos-3 resampling (0.262" -> 0.469") returns a constant sky exactly
    and keeps pixel noise white and near the native sigma (box resampling lowers it ~2x)."""
    from catclean.shreds.data import lanczos3_sample

    yy, xx = np.mgrid[0:128, 0:128] * (0.469 / 0.262) + 20.3
    flat = lanczos3_sample(np.full((300, 300), 2.5, np.float32), xx, yy)
    assert np.allclose(flat, 2.5, atol=1e-5)
    noise = np.random.default_rng(0).normal(0, 1, (300, 300)).astype(np.float32)
    out = lanczos3_sample(noise, xx, yy)
    assert 0.75 < out.std() < 1.05
    assert abs(np.corrcoef(out[:, :-1].ravel(), out[:, 1:].ravel())[0, 1]) < 0.15


def test_realistic_truth_recolours_only_under_realism():
    """host_reddening reddens hosts at fixed r; mdwarf_frac turns ~that fraction of stars
    into red M dwarfs (r-z 1-2.4), the same stars in every call; host_dimming fades the
    hosts alone; None changes nothing."""
    from catclean.sky.render import realistic_truth

    n = 400
    truth = pd.DataFrame({"kind": ["host"] + ["star"] * n, "mag_g": 17.0, "mag_r": 16.5,
                          "mag_z": 16.2, "seed": np.arange(n + 1) * 7 + 1})
    assert realistic_truth(truth, None) is truth
    opts = {"preset": "none", "host_reddening": (0.07, 0.0), "mdwarf_frac": 0.4}
    a, b = realistic_truth(truth, opts), realistic_truth(truth, opts)
    pd.testing.assert_frame_equal(a, b)
    assert a.mag_g[0] - a.mag_r[0] == pytest.approx(0.57) and a.mag_z[0] == 16.2
    rz = (a.mag_r - a.mag_z)[1:]
    red = rz > 0.95
    assert 0.33 < red.mean() < 0.47 and rz[red].max() <= 2.4
    assert (truth.mag_g == 17.0).all()  # the input is not modified
    dimmed = realistic_truth(truth, {"preset": "none", "host_dimming": 0.5})
    assert dimmed.mag_r[0] == 17.0 and dimmed.mag_g[0] == 17.5 and dimmed.mag_z[0] == 16.7
    assert (dimmed.mag_r[1:] == 16.5).all()  # stars untouched


def test_grouped_two_sample_test_ignores_field_fingerprints():
    """Set a is 20 fields x 10 cutouts that share their field's statistics; set b is 200
    cutouts of their own, drawn from the same distribution. Random folds let the trees
    learn each field's fingerprint from its siblings and 'tell' the sets apart; folds
    that keep fields whole do not."""
    from catclean.shreds.realism import two_sample_auc

    rng = np.random.default_rng(3)
    n_fields, per = 20, 10
    field = rng.normal(0, 1, (n_fields, 4))
    a = np.repeat(field, per, axis=0) + rng.normal(0, 0.02, (n_fields * per, 4))
    b = rng.normal(0, 1, (n_fields * per, 4))
    cols = [f"s{i}" for i in range(4)]
    sa, sb = pd.DataFrame(a, columns=cols), pd.DataFrame(b, columns=cols)
    empty = np.zeros((1, 1, 1, 3), np.uint8)
    kw = dict(method="trees", folds=5, seed=0, importance_repeats=0, stats_a=sa, stats_b=sb)
    naive = two_sample_auc(empty, empty, **kw)
    grouped = two_sample_auc(empty, empty, groups_a=np.repeat(np.arange(n_fields), per),
                             **kw)
    assert naive["auc"] > 0.75 and not naive["grouped"]
    assert abs(grouped["auc"] - 0.5) < 0.12 and grouped["grouped"]


def test_candidate_cuts_keep_host_centre_and_drop_stars():
    """Under the realistic sky the training cutouts are of detections that pass the
    paper's photometric candidate cuts: the host centre passes, no star does, and every
    kept row satisfies r <= 21 and the colour cut."""
    from catclean.shreds.data import _passes_candidate_cuts
    from catclean.sky.fields import host_field
    from catclean.sky.hosts import synthetic_hosts

    hosts = synthetic_hosts(3, (200, 240), (5, 35), (0.015, 0.03), (10.2, 11.2), 20240708)
    sky = {"field_max_pix": 400, "background_density": 40000, "star_density": 3000,
           "realism": "viewer"}
    nsaid = int(hosts.NSAID.iloc[1])
    _, cat = host_field(hosts, nsaid, "legacy", 20240708, 100.0, None, sky)
    keep = _passes_candidate_cuts(cat)
    assert 0 < keep.sum() < len(cat)
    assert not (keep & (cat.truth_kind == "star").to_numpy()).any()
    assert (keep & (cat.truth_kind == "host").to_numpy()).any()
    r = 22.5 - 2.5 * np.log10(cat.flux_r.to_numpy()[keep])
    g = 22.5 - 2.5 * np.log10(cat.flux_g.to_numpy()[keep])
    assert (r <= 21.0).all() and ((g - r) + 0.06 * (r - 14) < 0.9 + 0.2).all()


def test_realistic_truth_early_types_red_and_disc_colours_scatter():
    """early_type_colour puts bulge-dominated hosts on the red sequence whatever their
    table colour; host_colour_scatter spreads the star-forming hosts' colours (one deviate
    per host: bluer in g-r is bluer in r-z), from each host's seed."""
    from catclean.sky.morphology import EARLY_TYPE_BULGE_FRAC
    from catclean.sky.render import realistic_truth

    n = 300
    bulge = np.where(np.arange(n) % 3 == 0, 0.7, 0.2)
    truth = pd.DataFrame({"kind": "host", "mag_g": 17.45, "mag_r": 17.0, "mag_z": 16.7,
                          "bulge_frac": bulge, "seed": np.arange(n) * 11 + 5})
    opts = {"preset": "none", "early_type_colour": (0.77, 0.45),
            "host_colour_scatter": (0.15, 0.15)}
    out = realistic_truth(truth, opts)
    pd.testing.assert_frame_equal(out, realistic_truth(truth, opts))
    early = bulge >= EARLY_TYPE_BULGE_FRAC
    gr, rz = (out.mag_g - out.mag_r).to_numpy(), (out.mag_r - out.mag_z).to_numpy()
    assert abs(np.median(gr[early]) - 0.77) < 0.02 and abs(np.median(rz[early]) - 0.45) < 0.02
    assert gr[early].std() < 0.05
    late_gr, late_rz = gr[~early], rz[~early]
    assert abs(late_gr.mean() - 0.45) < 0.03 and 0.12 < late_gr.std() < 0.18
    assert np.corrcoef(late_gr, late_rz)[0, 1] > 0.99
    assert (out.mag_r == truth.mag_r).all()  # r, hence the candidate selection, unchanged


def test_knot_concentration_moves_knots_outwards():
    """knot_concentration < 1.5 places the star-forming knots further out in the disc."""
    from catclean.sky.morphology import _disc_maps

    def mean_knot_radius(k):
        # a face-on spiral of r_e 20" (seed and bulge fraction give a disc morphology)
        _, _, knots, _ = _disc_maps(12345, 0.1, 0.2, 20.0, 0.95, 30.0, 0.8, 60, 0.5, k)
        kn = knots["r"]
        yy, xx = np.indices(kn.shape) - (kn.shape[0] - 1) / 2
        return float((np.hypot(yy, xx) * kn).sum() / kn.sum())

    assert mean_knot_radius(0.8) > 1.1 * mean_knot_radius(1.5)


def test_realistic_truth_colour_scatter_decorrelated_locus_and_quenching():
    """A third host_colour_scatter element sets the correlation of the g-r and r-z
    deviates; background_colour_locus puts blue background galaxies on a redshifted
    star-forming locus; host_quenched_frac turns that fraction of star-forming hosts into
    knot-free early types. Every draw comes from the object's seed."""
    from catclean.sky.morphology import EARLY_TYPE_BULGE_FRAC
    from catclean.sky.render import realistic_truth

    n = 400
    hosts = pd.DataFrame({"kind": "host", "mag_g": 17.45, "mag_r": 17.0, "mag_z": 16.7,
                          "bulge_frac": 0.2, "knot_frac": 0.2, "knot_size": 1.5,
                          "seed": np.arange(n) * 13 + 1})
    rng = np.random.default_rng(3)
    gr = np.where(np.arange(n) % 4 == 0, 1.0, rng.normal(0.45, 0.15, n))
    back = pd.DataFrame({"kind": "background", "mag_g": 20.0 + gr, "mag_r": 20.0,
                         "mag_z": 20.0 - rng.normal(0.4, 0.15, n), "bulge_frac": 0.0,
                         "knot_frac": 0.0, "knot_size": 0.0, "seed": np.arange(n) * 7 + 2})
    truth = pd.concat([hosts, back], ignore_index=True)
    opts = {"preset": "none", "host_colour_scatter": (0.15, 0.2, 0.0),
            "background_colour_locus": (0.1, 0.6, 0.0, 0.05), "host_quenched_frac": 0.3,
            "host_knot_size_scale": 0.4}
    out = realistic_truth(truth, opts)
    pd.testing.assert_frame_equal(out, realistic_truth(truth, opts))
    h, b = out.kind == "host", out.kind == "background"
    quenched = h & (out.bulge_frac >= EARLY_TYPE_BULGE_FRAC)
    assert 0.24 < quenched.sum() / n < 0.36
    assert (out.knot_frac[quenched] == 0).all() and (out.knot_frac[h & ~quenched] == 0.2).all()
    late = h & ~quenched
    hgr, hrz = (out.mag_g - out.mag_r)[late], (out.mag_r - out.mag_z)[late]
    assert 0.12 < hgr.std() < 0.18 and 0.16 < hrz.std() < 0.24
    assert abs(np.corrcoef(hgr, hrz)[0, 1]) < 0.2  # independent deviates
    bgr, brz = (out.mag_g - out.mag_r)[b], (out.mag_r - out.mag_z)[b]
    blue = (gr < 0.8)
    assert np.allclose(bgr[blue.nonzero()[0] + n], gr[blue] + 0.1)
    resid = brz[blue.nonzero()[0] + n] - 0.6 * bgr[blue.nonzero()[0] + n]
    assert abs(resid.mean()) < 0.02 and resid.std() < 0.07
    red = ~blue
    assert np.allclose(out.mag_z[red.nonzero()[0] + n], truth.mag_z[red.nonzero()[0] + n])
    assert (out.mag_r == truth.mag_r).all()
    assert np.allclose(out.knot_size[h], 0.6) and (out.knot_size[b] == 0).all()


def test_realistic_truth_reddens_the_faint_field_only():
    """background_faint_reddening = (d(g-r), d(r-z)) per mag fainter than r = 20: a
    background galaxy at r = 23 gets 3x the shift, one at r <= 20 (a candidate) none;
    hosts and stars keep their colours and every r stays."""
    from catclean.sky.render import realistic_truth

    mag_r = np.array([18.0, 20.0, 21.0, 23.0, 23.0, 23.0])
    truth = pd.DataFrame({"kind": ["background"] * 4 + ["host", "star"], "mag_r": mag_r,
                          "mag_g": mag_r + 0.5, "mag_z": mag_r - 0.4, "bulge_frac": 0.0,
                          "knot_frac": 0.0, "knot_size": 0.0, "seed": np.arange(6) + 1})
    out = realistic_truth(truth, {"preset": "none", "background_faint_reddening": (0.08, 0.1)})
    gr, rz = out.mag_g - out.mag_r, out.mag_r - out.mag_z
    assert np.allclose(gr, [0.5, 0.5, 0.58, 0.74, 0.5, 0.5])
    assert np.allclose(rz, [0.4, 0.4, 0.5, 0.7, 0.4, 0.4])
    assert (out.mag_r == truth.mag_r).all() and (truth.mag_g == mag_r + 0.5).all()


def test_synthetic_hosts_z_weighting():
    """Hosts uniform in volume crowd to the far end of the redshift range; uniform in z
    they fill it evenly (more nearby, extended hosts); anything else is refused."""
    from catclean.sky.hosts import synthetic_hosts

    kw = dict(ra_range=(150, 160), dec_range=(0, 10), z_range=(0.01, 0.04),
              log_mass_range=(9.5, 11.0), seed=5)
    vol = synthetic_hosts(2000, **kw).Z.to_numpy()
    uni = synthetic_hosts(2000, **kw, z_weighting="uniform").Z.to_numpy()
    assert 0.01 <= uni.min() and uni.max() <= 0.04 and 0.01 <= vol.min() and vol.max() <= 0.04
    assert abs(np.median(uni) - 0.025) < 0.002
    # uniform in volume: median z = ((z0^3 + z1^3) / 2)^(1/3) = 0.0319
    assert abs(np.median(vol) - 0.0319) < 0.002
    assert (uni < 0.015).mean() > 3 * (vol < 0.015).mean()
    with pytest.raises(ValueError, match="z_weighting"):
        synthetic_hosts(10, **kw, z_weighting="log")


def test_trees_by_class_finds_the_class_that_differs():
    """Synthetic galaxies drawn like the real ones, synthetic shreds brighter: the
    within-class AUC is ~0.5 for the galaxies and ~1 for the shreds; unsure is left out."""
    from catclean.shreds.realism import trees_by_class

    rng = np.random.default_rng(4)
    cols = [f"s{k}" for k in range(5)]

    def stats(n, shift):
        x = rng.normal(size=(n, 5))
        x[:, 0] += shift
        return pd.DataFrame(x, columns=cols)

    sa = pd.concat([stats(150, 0.0), stats(100, 2.5)], ignore_index=True)
    la = np.r_[np.zeros(150, int), np.ones(100, int)]
    sb = pd.concat([stats(150, 0.0), stats(100, 0.0), stats(30, 5.0)], ignore_index=True)
    lb = np.r_[np.zeros(150, int), np.ones(100, int), -np.ones(30, int)]  # -1: unsure
    res = trees_by_class(sa, la, sb, lb, groups_a=np.arange(250) // 5, folds=4, seed=0)
    assert res["galaxy"]["n_a"] == 150 and res["galaxy"]["n_b"] == 150
    assert res["shred"]["n_a"] == 100 and res["shred"]["n_b"] == 100
    assert res["galaxy"]["auc"] < 0.65, res
    assert res["shred"]["auc"] > 0.9, res
    # no real shreds: only the galaxy class is measured
    assert set(trees_by_class(sa, la, sb, np.where(lb == 1, -1, lb))) == {"galaxy"}


def test_measure_by_class_with_the_eye_classes_of_a_directory(tmp_path):
    """eye_classes_of maps a label CSV onto a directory's files (unsure and unnamed files
    get -1) and measure() writes the per-class AUCs into realism.json."""
    import json

    from PIL import Image

    from catclean.shreds.real import eye_classes_of
    from catclean.shreds.realism import measure

    rng = np.random.default_rng(2)
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    rows = []
    for k in range(24):
        img = rng.integers(20, 50, (128, 128, 3)).astype(np.uint8)
        img[56:72, 56:72] = 200 if k % 2 else 120
        Image.fromarray(img).save(real_dir / f"{k:03d}_grz.png")
        if k < 22:
            rows.append({"objID": k, "file": f"{k:03d}_grz.png",
                         "label": "unsure" if k == 21 else "shred" if k % 2 else "galaxy"})
    csv = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    classes = eye_classes_of(real_dir, csv)
    assert list(classes[:4]) == [0, 1, 0, 1] and list(classes[-3:]) == [-1, -1, -1]
    syn = rng.integers(20, 50, (30, 128, 128, 3)).astype(np.uint8)
    syn[:, 56:72, 56:72] = 160
    np.savez(tmp_path / "set.npz", images=syn, labels=np.arange(30) % 2,
             groups=np.arange(30) // 3)
    summary = measure(tmp_path / "set.npz", real_dir, tmp_path / "out", n=30, folds=3,
                      methods=("trees",), real_classes=classes)
    by_class = json.loads((tmp_path / "out" / "realism.json").read_text())["trees_by_class"]
    assert by_class == summary["trees_by_class"]
    assert by_class["galaxy"]["n_b"] == 11 and by_class["shred"]["n_b"] == 10
    assert by_class["galaxy"]["n_a"] == 15
    with pytest.raises(ValueError, match="eye classes"):
        measure(tmp_path / "set.npz", real_dir, tmp_path / "out", n=30, folds=3,
                methods=("trees",), real_classes=classes[:5])
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        eye_classes_of(real_dir, tmp_path / "nowhere.csv")


def test_measure_joins_make_set_parts_and_repeats_the_draws(tmp_path):
    """A glob of make-set parts is measured as one set (every part's cutouts, their
    fields), and draws=3 repeats the trees test on three seeded draws: the first is the
    reported AUC, the mean is theirs, and a set that differs from the real one clearly
    is told apart in every draw, while a set drawn like the real one is not."""
    from PIL import Image

    from catclean.shreds.realism import measure

    rng = np.random.default_rng(5)
    real_dir = tmp_path / "real"
    real_dir.mkdir()

    def cutouts(n, centre):
        img = rng.integers(20, 50, (n, 128, 128, 3)).astype(np.uint8)
        img[:, 56:72, 56:72] = np.asarray(centre, np.uint8)[:, None, None, None]
        return img

    for k, img in enumerate(cutouts(40, rng.integers(80, 200, 40))):
        Image.fromarray(img).save(real_dir / f"{k:03d}_grz.png")
    for name, centre in (("far", np.full(40, 250)), ("near", rng.integers(80, 200, 40))):
        img = cutouts(40, centre)
        for p in range(2):  # two parts of 4 fields each
            np.savez(tmp_path / f"{name}.part{p:03d}.npz", images=img[20 * p:20 * (p + 1)],
                     labels=np.arange(20) % 2, groups=100 * p + np.arange(20) // 5)
    far = measure(tmp_path / "far.part*.npz", real_dir, tmp_path / "far", n=30, folds=3,
                  methods=("trees",), draws=3)
    assert far["n_set"] == 40 and far["n_groups"] == 8 and far["draws"] == 3
    trees = far["trees"]
    assert len(trees["auc_draws"]) == 3 and trees["auc_draws"][0] == trees["auc"]
    assert trees["auc_draws_mean"] == pytest.approx(np.mean(trees["auc_draws"]))
    assert min(trees["auc_draws"]) > 0.9, trees["auc_draws"]
    near = measure(tmp_path / "near.part*.npz", real_dir, tmp_path / "near", n=30, folds=3,
                   methods=("trees",), draws=3)
    assert near["trees"]["auc_draws_mean"] < 0.75, near["trees"]["auc_draws"]
    with pytest.raises(FileNotFoundError, match="none.part"):
        measure(tmp_path / "none.part*.npz", real_dir, tmp_path / "x", methods=("trees",))


def test_viewer6_preset_is_viewer_with_four_changes_and_validates():
    """viewer6 keeps every viewer option (the shipped model's pre-training sky stays
    reproducible under "viewer") but for the g/r sky residual, the faint field's colours
    and the hosts' knots; every preset passes the schema for the training and science
    skies, and an unknown one is refused there."""
    import copy

    from catclean.config import ConfigError, default_config, validate_config
    from catclean.sky.render import REALISM_PRESETS, realism_options

    v, v6 = realism_options("viewer"), realism_options("viewer6")
    changed = {k for k in v6 if v6[k] != v.get(k)}
    assert changed == {"sky_offset", "background_faint_reddening", "knot_scale",
                       "knot_concentration"}
    assert set(v) <= set(v6) and v6["sky_offset"]["z"] == v["sky_offset"]["z"]
    assert v6["knot_scale"] < v["knot_scale"] and v6["knot_concentration"] > v["knot_concentration"]
    base = default_config()
    for preset in REALISM_PRESETS:  # every preset is in both schema enums
        cfg = copy.deepcopy(base)
        cfg["shreds"]["training"]["realism"] = preset
        cfg["sky"]["realism"] = preset
        validate_config(cfg)
    cfg = copy.deepcopy(base)
    cfg["shreds"]["training"]["realism"] = "viewer99"
    with pytest.raises(ConfigError, match="shreds.training.realism"):
        validate_config(cfg)


def test_training_hosts_follow_the_presets_redshift_range():
    """The training sky's host table follows the realism preset's ``host_z_range`` and
    ``host_z_weighting`` (a dict overrides them), and the classic sky keeps
    ``shreds.training.z_range`` and only star-forming discs."""
    from catclean.shreds.data import training_hosts

    farther = {"preset": "viewer6", "host_z_range": (0.01, 0.05)}
    tables = {str(name): training_hosts(200, 11, realism=realism)
              for name, realism in (("viewer6", "viewer6"), (None, None),
                                    ("farther", farther))}
    z = {name: table["Z"].to_numpy() for name, table in tables.items()}
    assert z["viewer6"].min() >= 0.005 and z["viewer6"].max() <= 0.04
    assert z["farther"].min() >= 0.01 and z["farther"].max() <= 0.05
    assert z["None"].max() <= 0.02
    # uniform in z: the median sits near the range's middle (0.0225 and 0.03)
    assert abs(np.median(z["viewer6"]) - 0.0225) < 0.004, np.median(z["viewer6"])
    assert abs(np.median(z["farther"]) - 0.03) < 0.004, np.median(z["farther"])
    # volume weighting (the default) puts most hosts in the far half of the range
    by_volume = training_hosts(200, 11, realism={**farther, "host_z_weighting": "volume"})
    assert np.median(by_volume["Z"]) > 0.038, np.median(by_volume["Z"])
    classic = tables["None"]
    assert (classic["sim_knot_frac"] > 0).all() and len(classic) == 200
    assert (tables["viewer6"]["sim_knot_frac"] == 0).any()
