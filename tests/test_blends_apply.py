"""Blends stage: the catalog application (blend rule, stamp preparation, flagged rows)."""

import numpy as np
import pandas as pd
import pytest

from catclean.blends.apply import blend_selection, deblend_partition, prepare_stamps
from catclean.config import default_config
from catclean.cutouts import CutoutStore, write_store

APPLY = default_config()["blends"]["apply"]


def _cuts():
    return pd.DataFrame({
        "source_id": [f"legacy:dr9:{i}" for i in range(7)],
        "survey": "legacy", "release": "dr9", "ra": 150.0, "dec": 2.0,
        "fracflux_r": [0.5, np.nan, 0.01, 0.01, 0.9, 0.9, 0.9],
        "nn_sep_arcsec": [30.0, 2.0, 2.0, 20.0, 3.0, 3.0, 3.0],
        "nn_flux_ratio": [1.0, 0.5, 50.0, 1.0, 1.0, 1.0, 1.0],
        "r_eff": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "flux_r": 10.0, "mag_r": 20.0,
    })


def test_blend_rule():
    is_bl, rule = blend_selection(_cuts(), 64, 0.262, APPLY)
    assert list(is_bl) == [True, True, False, False, True, True, True]
    assert list(rule[:4]) == ["fracflux", "neighbour", "", ""]
    assert rule[4] == "fracflux+neighbour"
    # a survey without fracflux (all NaN) and without neighbour columns: nothing is blended
    bare = pd.DataFrame({"source_id": ["a", "b"], "fracflux_r": [np.nan, np.nan]})
    assert not blend_selection(bare, 64, 0.262, APPLY)[0].any()


def test_prepare_stamps_crop_pad_and_flags():
    cube = np.zeros((4, 80, 80, 3), dtype=np.float32)
    cube[:, 40, 40, 1] = 5.0  # centre of an even 80-px cutout
    cube[1, 3, 3, 1] = np.nan
    cube[2] = 0.0
    st, why = prepare_stamps(cube, 64)
    assert st.shape == (4, 64, 64)
    assert st[0, 32, 32] == 5.0 and st[0].sum() == 5.0
    assert list(why) == ["", "", "empty_stamp", ""]  # NaN at (3,3) is cropped away
    cube[1, 40, 41, 1] = np.nan
    assert prepare_stamps(cube, 64)[1][1] == "nan_pixels"
    small = np.zeros((1, 48, 48, 3), dtype=np.float32)
    small[0, 24, 24, 1] = 1.0
    st, why = prepare_stamps(small, 64)
    assert st[0, 32, 32] == 1.0 and why[0] == ""


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from catclean.blends.models import build_blend2flux

    keras.utils.set_random_seed(0)
    return build_blend2flux(64, 4)


def test_deblend_partition_flags_bad_stamps(tmp_path, tiny_model):
    cuts = _cuts()
    rng = np.random.default_rng(0)
    cubes = rng.normal(0, 0.01, (7, 64, 64, 3)).astype(np.float32)
    cubes[:, 30:34, 30:34, :] += 1.0
    cubes[4, 10, 10, 1] = np.nan  # blended, NaN pixel -> flagged
    cubes[5] = 0.0  # blended, empty stamp -> flagged
    status = ["ok"] * 7
    status[6] = "corrupt"
    write_store(tmp_path / "grz", list(cuts["source_id"]), cubes, status,
                meta={"pixscale": 0.262, "bands": ["g", "r", "z"], "units": "nanomaggy"})
    store = CutoutStore(tmp_path / "grz")
    out = deblend_partition(cuts, store, tiny_model, "blend2flux", 0.262, APPLY)
    assert list(out["source_id"]) == list(cuts["source_id"])
    assert str(out["is_blended"].dtype) == "boolean"
    assert str(out["blend_flux_r_blend2flux"].dtype) == "float64"
    assert str(out["blends_reason"].dtype) == "string"
    reasons = out["blends_reason"].tolist()
    assert reasons[2] == "not_blended" and reasons[3] == "not_blended"
    assert reasons[4] == "nan_pixels" and reasons[5] == "empty_stamp"
    assert reasons[6] == "cutout_corrupt"
    assert pd.isna(reasons[0]) and pd.isna(reasons[1])
    f = out["blend_flux_r_blend2flux"]
    assert f[[0, 1]].notna().all() and (f[[0, 1]] > 0).all()
    assert f[2:].isna().all()
    np.testing.assert_allclose(out["blend_mag_r_blend2flux"][:2], 22.5 - 2.5 * np.log10(f[:2]))
    # a store at another pixel scale is refused row by row, not with a crash
    write_store(tmp_path / "grz2", list(cuts["source_id"]), cubes, status,
                meta={"pixscale": 0.5})
    out2 = deblend_partition(cuts, CutoutStore(tmp_path / "grz2"), tiny_model, "blend2flux",
                             0.262, APPLY)
    assert (out2["blends_reason"][out2["is_blended"]] == "pixscale_mismatch").all()
    # no store at all
    out3 = deblend_partition(cuts, None, tiny_model, "blend2flux", 0.262, APPLY)
    assert out3["blends_reason"][0] == "cutout_missing"
