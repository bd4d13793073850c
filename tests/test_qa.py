"""Unit tests of the QA stage (paper 000): simulator, extraction, SOM, stamps, failure paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from catclean.config import default_config
from catclean.qa import CLASSES
from catclean.qa.combiner import ccd_evidence, combine_ccds, fit_combiner
from catclean.qa.extract import (
    ExposurePixels,
    ExtractConfig,
    QAInputError,
    ccd_data,
    ccd_pool,
    process_exposure,
    read_exposure,
)
from catclean.qa.features import classical_metrics, som_features
from catclean.qa.grading import qa_settings
from catclean.qa.models import ModelConfig
from catclean.qa.represent import input2, representative_ccd
from catclean.qa.sextractor import find_binary
from catclean.qa.simulate import (
    SimConfig,
    draw_exposure_params,
    exposure_plan,
    make_exposure,
    render_exposure,
    write_mef,
)
from catclean.qa.som import BatchSOM, cluster_codebook

QA = qa_settings(default_config())


def sim_config(**overrides) -> SimConfig:
    """The default ``simulate`` settings with ``overrides`` (the unit tests' simulator has no
    training-only short-exposure fraction)."""
    return SimConfig.from_dict({**QA["simulate"], "short_exposure_fraction_train": None,
                                **overrides})


def extract_config(**overrides) -> ExtractConfig:
    return ExtractConfig.from_dict({**QA["extract"], **overrides})


def model_config(**overrides) -> ModelConfig:
    return ModelConfig.from_dict({**QA["models"], **overrides})


SIM = sim_config(n_ccd=3, ccd_shape=(768, 512), p_dead_ccd=0.0, short_exposure_fraction=0.0)


def _exposure(tmp_path, label, idx=0, seed=3, cfg=SIM):
    row = {"label": label, "split": "test", "defect": "", "expid": 100 + idx, "index": idx}
    return make_exposure(row, tmp_path / f"{label}_{idx}.fits", cfg, seed)


# ------------------------------------------------------------------------ simulator
def test_mef_structure_and_headers(tmp_path):
    rec, truth = _exposure(tmp_path, "Good")
    exptime, hdul = read_exposure(rec["path"])
    with hdul:
        assert len(hdul) == 1 + SIM.n_ccd
        assert hdul[0].header["EXPTIME"] == exptime == rec["exptime"]
        for h in hdul[1:]:
            assert h.data.shape == SIM.ccd_shape
            assert h.data.dtype.kind == "u" and h.data.dtype.itemsize == 2   # 16-bit like MegaCam
            assert h.header["EXPTIME"] == exptime
    assert truth["is_star"].any() and (~truth["is_star"]).any()


def test_dead_ccds_are_zero_and_counted(tmp_path):
    cfg = sim_config(n_ccd=6, ccd_shape=(256, 256), p_dead_ccd=0.5)
    rec, _ = _exposure(tmp_path, "Good", cfg=cfg, seed=5)
    assert rec["n_dead_ccd"] == len(rec["dead_ccds"].split(",")) > 0
    ccds, _ = process_exposure(rec["path"], extract_config(), SIM.pixel_scale)
    assert (ccds["status"] == "dead").sum() == rec["n_dead_ccd"]


def test_simulation_is_deterministic(tmp_path):
    rng = np.random.default_rng(1)
    p1 = draw_exposure_params(1, "RBT", np.random.default_rng(9), SIM)
    p2 = draw_exposure_params(1, "RBT", np.random.default_rng(9), SIM)
    assert p1 == p2
    a, _ = render_exposure(p1, sim_config(n_ccd=1, ccd_shape=(200, 200)), np.random.default_rng(4))
    b, _ = render_exposure(p2, sim_config(n_ccd=1, ccd_shape=(200, 200)), np.random.default_rng(4))
    assert np.array_equal(a[0], b[0])
    assert rng is not None


def test_class_physics(tmp_path):
    """Trails make bright point sources elongated, bad seeing makes them wide
    (the classical diagnostics of paper Sec. 6); saturated stars reach 65535 ADU."""
    cfg = sim_config(n_ccd=2, ccd_shape=(1024, 768), p_dead_ccd=0.0,
                    short_exposure_fraction=0.0, star_density=(30000.0, 30000.0))
    out = {}
    sat = False
    for i, label in enumerate(("Good", "RBT", "B-Seeing")):
        rec, truth = _exposure(tmp_path, label, idx=i, cfg=cfg, seed=21)
        ccds, src = process_exposure(rec["path"], extract_config(), cfg.pixel_scale,
                                     truth=pd.DataFrame(truth))
        stel = (src["is_star"] == 1).astype(float).to_numpy()
        out[label] = classical_metrics(src, stel, cfg.pixel_scale)
        _, hdul = read_exposure(rec["path"])
        with hdul:
            sat |= any(int(h.data.max()) == 65535 for h in hdul[1:])
    assert out["RBT"][1] > out["Good"][1] + 0.2           # ellipticity
    assert out["Good"][1] < 0.2
    assert out["B-Seeing"][0] > out["Good"][0]            # FWHM
    assert sat


def test_exposure_plan_balanced():
    plan = exposure_plan(3, 2, seed=1, broken=True)
    labels = pd.Series([r["label"] for r in plan if not r["defect"]])
    assert set(labels) == set(CLASSES) and labels.value_counts().nunique() == 1
    assert {r["defect"] for r in plan} == {"", "corrupt", "no_exptime", "nan_ccd", "blank"}
    assert len({r["expid"] for r in plan}) == len(plan)


# ------------------------------------------------------------------ failure paths
@pytest.mark.parametrize("defect,match", [("corrupt", "corrupt|truncated"),
                                          ("no_exptime", "EXPTIME")])
def test_unreadable_exposures_raise_named_error(tmp_path, defect, match):
    row = {"label": "Good", "split": "test", "defect": defect, "expid": 7, "index": 0}
    rec, _ = make_exposure(row, tmp_path / "x.fits", SIM, 1)
    with pytest.raises(QAInputError, match=match):
        process_exposure(rec["path"], extract_config(), SIM.pixel_scale)


def test_nan_ccd_and_blank_exposure_statuses(tmp_path):
    row = {"label": "Good", "split": "test", "defect": "nan_ccd", "expid": 8, "index": 0}
    rec, _ = make_exposure(row, tmp_path / "nan.fits", SIM, 1)
    ccds, src = process_exposure(rec["path"], extract_config(), SIM.pixel_scale)
    bad = ccds[ccds["status"] == "bad"]
    assert len(bad) == 1 and "NaN" in bad["reason"].iloc[0]
    assert (ccds["status"] == "ok").sum() == SIM.n_ccd - 1 and len(src) > 0
    row = {"label": "Good", "split": "test", "defect": "blank", "expid": 9, "index": 1}
    rec, _ = make_exposure(row, tmp_path / "blank.fits", SIM, 1)
    ccds, src = process_exposure(rec["path"], extract_config(), SIM.pixel_scale)
    assert len(src) == 0 and (ccds["status"] != "ok").all()


def test_parallel_extraction_equals_serial(tmp_path):
    """Worker processes give the serial tables, row for row, including dead and NaN CCDs;
    lazy stamp reads give the pixels of a full read."""
    cfg = sim_config(n_ccd=6, ccd_shape=(512, 384), p_dead_ccd=0.2, short_exposure_fraction=0.0)
    paths = []
    for i, defect in enumerate(["", "nan_ccd"]):
        row = {"label": "Good", "split": "test", "defect": defect, "expid": 40 + i, "index": i}
        rec, truth = make_exposure(row, tmp_path / f"p{i}.fits", cfg, 5)
        paths.append((rec["path"], pd.DataFrame(truth)))
    # the first exposure cut inside its fourth CCD: 'missing' rows, in both paths
    raw = open(paths[0][0], "rb").read()
    (tmp_path / "cut.fits").write_bytes(raw[:len(raw) * 3 // 6 + 5 * 2880])
    paths.append((tmp_path / "cut.fits", paths[0][1]))
    statuses = []
    with ccd_pool(2, pixels=512 * 384) as pool:
        for path, truth in paths:
            c1, s1 = process_exposure(path, extract_config(), cfg.pixel_scale, truth=truth)
            c2, s2 = process_exposure(path, extract_config(), cfg.pixel_scale, truth=truth,
                                      pool=pool)
            pd.testing.assert_frame_equal(c1, c2)
            pd.testing.assert_frame_equal(s1, s2)
            assert len(c1) == 6 and len(s1) >= 20 and (c1["status"] == "ok").sum() >= 2
            statuses.append(c1["status"].tolist())
    assert "bad" in statuses[1]  # the nan_ccd exposure
    assert statuses[2][:3] == statuses[0][:3] and statuses[2][3:] == ["missing"] * 3
    _, hdul = read_exposure(paths[0][0])
    with hdul, ExposurePixels(paths[0][0]) as px:
        full = ccd_data(hdul[2])
        assert px[1].shape == full.shape
        np.testing.assert_array_equal(px[1][100:125, 370:384], full[100:125, 370:384])


def test_missing_file(tmp_path):
    with pytest.raises(QAInputError, match="not found"):
        read_exposure(tmp_path / "nope.fits")


def test_write_mef_without_exptime(tmp_path):
    p = write_mef(tmp_path / "n.fits", [np.ones((64, 64), np.uint16)], None, SIM, exptime=None)
    with pytest.raises(QAInputError, match="EXPTIME"):
        read_exposure(p)


# ------------------------------------------------------------------------------ SOM
def test_som_bmu_matches_bruteforce_and_chunks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 5)).astype(np.float32)
    som = BatchSOM.from_preset("small", rows=6, cols=7, n_iter=5, chunk=333, seed=1).fit(x)
    z = som.transform(x)
    brute = ((z[:, None, :] - som.weights[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(som.bmu(z) == brute) > 0.999    # float32 ties only
    som2 = BatchSOM.from_preset("small", rows=6, cols=7, n_iter=5, chunk=4096, seed=1).fit(x)
    np.testing.assert_allclose(som.weights, som2.weights, atol=1e-4)


def _reference_step(w, z, grid_d2, sigma):
    """One batch-SOM iteration by definition, in float64 with the full distance matrix."""
    z64, w64 = z.astype(np.float64), w.astype(np.float64)
    d2 = ((z64[:, None, :] - w64[None]) ** 2).sum(-1)
    idx = d2.argmin(1)
    qe = float(np.sqrt(d2[np.arange(len(z)), idx]).mean())
    n = np.bincount(idx, minlength=len(w)).astype(np.float64)
    s = np.stack([np.bincount(idx, weights=z64[:, j], minlength=len(w))
                  for j in range(z.shape[1])], 1)
    h = np.exp(-grid_d2.astype(np.float64) / (2.0 * sigma * sigma))
    new = w.copy()
    ok = h @ n > 1e-12
    new[ok] = ((h @ s)[ok] / (h @ n)[ok, None]).astype(np.float32)
    return idx, qe, new


@pytest.mark.parametrize("n_rows, n_feat, chunk", [
    (1000, 5, 256),     # blocks of 256 with a partial last block, not a multiple of the tile
    (100, 5, 8192),     # fewer rows than one block (and than one tile)
    (777, 11, 128),     # more than 8 features (the kernel's general path)
])
def test_fused_som_pass_equals_reference(n_rows, n_feat, chunk):
    rng = np.random.default_rng(n_rows)
    z = rng.normal(size=(n_rows, n_feat)).astype(np.float32)
    som = BatchSOM.from_preset("small", seed=1, n_threads=1, rows=6, cols=7, n_iter=3,
                                chunk=chunk)   # 42 units: padded
    som.weights = rng.normal(size=(som.n_units, n_feat)).astype(np.float32)
    w0 = som.weights.copy()
    idx_ref, qe_ref, w_ref = _reference_step(w0, z, som._grid_d2, 1.5)
    idx, dist = som.bmu(z, return_dist=True)
    assert np.array_equal(idx, idx_ref)
    assert abs(dist.mean() - qe_ref) <= 1e-9 * qe_ref
    qe = som.step(z, 1.5)
    assert abs(qe - qe_ref) <= 1e-9 * qe_ref
    np.testing.assert_allclose(som.weights, w_ref, rtol=1e-6, atol=1e-6)
    # the same iteration on 3 threads: identical to the bit (fixed blocks, fixed sum order)
    som3 = BatchSOM.from_preset("small", seed=1, n_threads=3, rows=6, cols=7, n_iter=3,
                                 chunk=chunk)
    som3.weights = w0.copy()
    assert som3.step(z, 1.5) == qe and np.array_equal(som3.weights, som.weights)


def test_som_converges_deterministic_and_roundtrips(tmp_path):
    rng = np.random.default_rng(2)
    centers = rng.normal(scale=5, size=(8, 5))
    x = (centers[rng.integers(8, size=20000)] + rng.normal(size=(20000, 5))).astype(np.float32)
    a = BatchSOM.from_preset("small", seed=4, rows=15, cols=15, sigma0=3.0,
                              sigma_end=0.5, n_iter=15).fit(x)
    b = BatchSOM.from_preset("small", seed=4, rows=15, cols=15, sigma0=3.0,
                              sigma_end=0.5, n_iter=15).fit(x)
    assert np.array_equal(a.weights, b.weights)
    qe = a.quantization_error
    assert qe[-1] < 0.6 * qe[0]
    assert a.sigma_at(0) == 3.0 and abs(a.sigma_at(14) - 0.5) < 1e-9
    uc = cluster_codebook(a.weights, 20, seed=0)
    assert uc.shape == (225,) and set(uc) == set(range(20))
    a.save(tmp_path / "som.npz", unit_cluster=uc)
    c, extra = BatchSOM.load(tmp_path / "som.npz")
    assert np.array_equal(c.predict(x), a.predict(x))
    assert np.array_equal(extra["unit_cluster"], uc)
    assert a.hit_map(x).sum() == len(x)


# ----------------------------------------------------------------------- stamps etc.
def test_representative_image_blank_for_empty_cluster():
    data = np.full((100, 120), 100.0, np.float32)
    data[50, 60] = 1000.0
    x = np.array([60.0, 10.0, 119.0])
    y = np.array([50.0, 10.0, 99.0])
    cl = np.array([0, 0, 3])
    st, ct, chosen = representative_ccd(data, x, y, cl, 100.0, 10.0, n_clusters=5, stamp=25,
                                        rng=np.random.default_rng(0))
    assert st.shape == (5, 25, 25) and ct.tolist() == [2, 0, 0, 1, 0]
    assert np.all(st[[1, 2, 4]] == 0) and chosen[1] == -1
    assert np.isfinite(st).all()
    st2, _, chosen2 = representative_ccd(data, x, y, cl, 100.0, 10.0, 5, 25,
                                         np.random.default_rng(0))
    assert np.array_equal(st, st2) and np.array_equal(chosen, chosen2)
    enc = input2(ct[None])
    assert enc.shape == (1, 10) and abs(enc[0, 5:].sum() - 1) < 1e-6


def test_combine_ccds_rule():
    p = np.array([[0.9, 0.025, 0.025, 0.025, 0.025], [0.6, 0.1, 0.1, 0.1, 0.1]])
    q = combine_ccds(p)
    assert abs(q.sum() - 1) < 1e-12 and q.argmax() == 0
    lp = np.log(p).mean(0)
    np.testing.assert_allclose(q, np.exp(lp) / np.exp(lp).sum())
    assert np.isnan(combine_ccds(np.zeros((0, 5)))).all()


def _partial_defect_exposures(rng, labels, n_ccd=8, n_bad=2):
    """Per-CCD probabilities as a CCD classifier gives them when a defect (class 4, BGP)
    shows on only ``n_bad`` CCDs of an exposure: the clean CCDs look Good with a raised
    P(BGP); the other classes show on every CCD."""
    out = []
    for c in labels:
        p = np.full((n_ccd, 5), 0.05)
        if c == 4:
            p[:, 0], p[:, 4] = 0.6, 0.25
            p[rng.choice(n_ccd, n_bad, replace=False)] = [0.05, 0.02, 0.02, 0.01, 0.9]
        else:
            p[:, c], p[:, 4] = 0.7, 0.12
        p = p * rng.uniform(0.7, 1.3, p.shape)
        out.append(p / p.sum(1, keepdims=True))
    return out


def test_trained_combiner_recovers_partial_defects():
    rng = np.random.default_rng(0)
    yv = np.repeat(np.arange(5), 12)                     # 60 "validation" exposures
    comb = fit_combiner(_partial_defect_exposures(rng, yv), yv, seed=0)
    assert comb["rule"] == "trained" and set(comb["cv_logloss"]) >= {"inf", "0.3"}
    assert min(comb["cv_logloss"].values()) < comb["cv_logloss"]["inf"]
    yt = np.repeat(np.arange(5), 40)
    pt = _partial_defect_exposures(rng, yt)
    acc_mean_log = np.mean([combine_ccds(p).argmax() == y for p, y in zip(pt, yt)])
    acc_trained = np.mean([combine_ccds(p, comb).argmax() == y for p, y in zip(pt, yt)])
    # the mean-log rule calls ~40% of the BGP exposures Good; the trained rule sees them
    assert acc_mean_log < 0.95 and acc_trained >= 0.99
    bgp = yt == 4
    assert np.mean([combine_ccds(p, comb).argmax() == 4 for p in np.array(pt)[bgp]]) >= 0.95
    q = combine_ccds(pt[0], comb)
    assert abs(q.sum() - 1) < 1e-12 and np.isnan(combine_ccds(np.zeros((0, 5)), comb)).all()


def test_combiner_falls_back_to_mean_log():
    rng = np.random.default_rng(1)
    y = np.array([0, 1, 2, 3, 4, 4])                     # one exposure of most classes
    comb = fit_combiner(_partial_defect_exposures(rng, y), y)
    assert comb["rule"] == "mean_log" and "too few" in comb["note"]
    p = _partial_defect_exposures(rng, [4])[0]
    np.testing.assert_allclose(combine_ccds(p, comb), combine_ccds(p))
    ev = ccd_evidence(p)
    assert ev.shape == (3, 5)
    np.testing.assert_allclose(ev[0], np.log(p).mean(0))
    np.testing.assert_allclose(ev[1], np.log(p.mean(0)))
    np.testing.assert_allclose(ev[2], np.log(p).max(0))


def test_som_features_caps_exptime():
    src = pd.DataFrame({"npix": [10.0, 100.0], "a": [2.0, 4.0], "b": [1.0, 4.0],
                        "rel_back": [0.5, -1.0], "exptime": [5.0, 300.0]})
    f = som_features(src, np.array([0.9, 0.1]))
    np.testing.assert_allclose(f[:, 4], [5 / 30, 1.0])
    np.testing.assert_allclose(f[:, 1], [0.5, 0.0])


def test_qa_config_validates():
    from catclean.config import REPO_ROOT, load_config

    cfg = load_config(REPO_ROOT / "config" / "config.yaml")
    assert qa_settings(cfg)["som"]["rows"] == 15 and cfg["qa"]["stamp"] == 25
    from catclean.config import ConfigError

    with pytest.raises(ConfigError, match="qa"):
        load_config(REPO_ROOT / "config" / "config.yaml",
                    {"qa": {"extract": {"backend": "swarp"}}})


# ------------------------------------------------------------------- Source Extractor
@pytest.mark.skipif(find_binary() is None,
                    reason="Source Extractor binary ('source-extractor' or 'sex') not installed; "
                           "`make test` installs it with apt when run as root")
def test_sextractor_backend_matches_sep(tmp_path):
    cfg = sim_config(n_ccd=1, ccd_shape=(1024, 768), p_dead_ccd=0.0,
                    short_exposure_fraction=0.0, star_density=(30000.0, 30000.0))
    rec, truth = _exposure(tmp_path, "Good", cfg=cfg, seed=8)
    tt = pd.DataFrame(truth)
    _, s_sep = process_exposure(rec["path"], extract_config(backend="sep"), cfg.pixel_scale,
                                truth=tt)
    _, s_sex = process_exposure(rec["path"], extract_config(backend="sextractor"), cfg.pixel_scale,
                                 truth=tt)
    assert abs(len(s_sex) - len(s_sep)) < 0.2 * len(s_sep)
    assert s_sex["class_star"].between(0, 1).all()
    known = s_sex[s_sex["snr"] > 20]
    from catclean.qa.stellarity import roc_auc

    assert roc_auc(known["is_star"], known["class_star"]) > 0.8
    f = som_features(s_sex, s_sex["class_star"].to_numpy())
    assert f.shape == (len(s_sex), 5) and np.isfinite(f).all()


# ------------------------------------------------ per-CCD truth and training sampling
def test_bgp_pattern_amplitude_recorded_per_ccd(tmp_path):
    """The simulator records, per CCD, how strongly the background problem shows: zero
    for Good exposures (the faint gradient of every exposure is not a problem), the
    fringe amplitude on every CCD, and a scattered-light glow centred on the simulated
    CCDs (so a BGP exposure of a reduced mosaic is not clean everywhere)."""
    from catclean.qa.simulate import mosaic_footprint

    cfg = sim_config(n_ccd=4, ccd_shape=(128, 128), p_dead_ccd=0.0)
    rng = np.random.default_rng(5)
    good = draw_exposure_params(1, "Good", rng, cfg)
    render_exposure(good, cfg, rng)
    assert good.bgp_ccd_amp == [0.0] * 4
    u_lo, u_hi, v_lo, v_hi = mosaic_footprint(4)
    assert (u_lo, v_lo) == (-1.0, pytest.approx(-2 / 4.5)) and u_hi == pytest.approx(-0.5 / 4.5)
    n_scattered = 0
    for i in range(40):
        p = draw_exposure_params(10 + i, "BGP", np.random.default_rng([5, i]), cfg)
        if "scattered" in p.bgp:
            n_scattered += 1
            s = p.bgp["scattered"]
            assert u_lo <= s["u0"] <= u_hi and v_lo <= s["v0"] <= v_hi
        if set(p.bgp) == {"fringes"}:
            render_exposure(p, cfg, np.random.default_rng(0))
            amp = np.array(p.bgp_ccd_amp)
            # a sine of amplitude A has a 1-99% half-range of ~A
            assert np.all(np.abs(amp - p.bgp["fringes"]["amp"]) < 0.2 * p.bgp["fringes"]["amp"])
    assert n_scattered > 5
    rec, _ = _exposure(tmp_path, "BGP", cfg=cfg)
    assert len(rec["bgp_ccd_amp"].split(",")) == 4


def test_ccd_training_labels_from_truth():
    from catclean.qa.grading import ccd_training_labels

    bgp, good, bt = CLASSES.index("BGP"), CLASSES.index("Good"), CLASSES.index("BT")
    ex = pd.DataFrame({"expid": [1, 2, 3], "bgp_ccd_amp": ["0.0000,0.0150,0.0900", "", "0.0,0.0,0.0"]})
    expid = np.array([1, 1, 1, 2, 3, 3])
    ccd = np.array([0, 1, 2, 0, 0, 1])
    y = np.array([bgp, bgp, bgp, bt, bgp, bgp])
    out = ccd_training_labels(ex, expid, ccd, y, model_config())
    assert out.tolist() == [good, good, bgp, bt, good, good]
    assert ccd_training_labels(ex, expid, ccd, y, model_config(bgp_min_amplitude=0.01)).tolist() \
        == [good, bgp, bgp, bt, good, good]
    assert ccd_training_labels(ex, expid, ccd, y, model_config(ccd_labels="exposure")).tolist() == y.tolist()
    # human-labelled exposures (no per-CCD truth column) keep their class
    assert ccd_training_labels(ex[["expid"]], expid, ccd, y, model_config()).tolist() == y.tolist()
    with pytest.raises(ValueError, match="ccd_labels 'per-ccd'"):
        ccd_training_labels(ex, expid, ccd, y, model_config(ccd_labels="per-ccd"))


def test_short_exposure_fraction_train_only_changes_training_exposures():
    cfg = sim_config(n_ccd=2, short_exposure_fraction=0.1, short_exposure_fraction_train=0.6)

    def short_share(split):
        t = [draw_exposure_params(i, "Good", np.random.default_rng([2, i]), cfg, split=split).exptime
             for i in range(300)]
        return np.mean(np.array(t) < 30)

    assert abs(short_share("train") - 0.6) < 0.1
    assert abs(short_share("test") - 0.1) < 0.06
    same = sim_config(n_ccd=2, short_exposure_fraction=0.1)
    a = draw_exposure_params(7, "RBT", np.random.default_rng(9), same, split="train")
    b = draw_exposure_params(7, "RBT", np.random.default_rng(9), same, split="test")
    assert a == b
