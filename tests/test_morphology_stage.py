"""The morphology stage as the rules call it (catclean.morphology.stage, issue 12 point 4):
schema presets, per-source catalog columns, in_host_mask geometry, flagged host images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from catclean.config import default_config, preset_settings
from catclean.morphology import stage
from catclean.morphology.config import MorphConfig, from_settings, preset

SIZE, PIX = 64, 0.396127
HOST_RA, HOST_DEC = 150.0, 2.0


@pytest.mark.parametrize("name,backbone,size", [("tiny", "resnet10", 128),
                                                ("small", "resnet18", 128),
                                                ("paper", "resnet101", 256)])
def test_schema_presets_resolve(name, backbone, size):
    cfg = default_config({"morphology": {"preset": name}})
    settings = preset_settings(cfg, "morphology")
    net = from_settings(settings, seed=cfg["seed"])
    assert isinstance(net, MorphConfig)
    assert (net.backbone, net.image_size, settings["preset"]) == (backbone, size, name)
    assert net.stages[0][0] == "heads" and net.stages[-1][0] == "all"
    assert preset(name) == net
    # a user's partial preset merges onto the schema's
    cfg = default_config({"morphology": {"presets": {name: {"head_fc": 7}}}})
    assert cfg["morphology"]["presets"][name]["backbone"] == backbone
    assert cfg["morphology"]["presets"][name]["head_fc"] == 7


def test_train_steps_is_a_fixed_step_budget():
    settings = preset_settings(default_config(), "morphology")
    epochs = sum(e for _, e in settings["stages"])
    cfg = stage.network_config(settings, 1, 3 * epochs)
    assert cfg.steps_per_epoch == 3
    assert stage.network_config(settings, 1, None).steps_per_epoch == settings["steps_per_epoch"]


def _sky(x, y):
    """Sky position of host-image pixel (x, y) (row y from the top, north up)."""
    from catclean.sky.render import field_wcs

    ra, dec = field_wcs(HOST_RA, HOST_DEC, SIZE, PIX).all_pix2world(
        np.asarray(x, float), SIZE - 1 - np.asarray(y, float), 0)
    return ra, dec


def _segmentation():
    """Two hosts: 1 segmented (mask = square x, y in [20, 40), a detection of class 2 on
    it and one of class 1 at x, y in [50, 56)), 2 flagged (no_detection)."""
    masks = np.zeros((2, SIZE, SIZE), bool)
    masks[0, 20:40, 20:40] = True
    labels = np.full((2, SIZE, SIZE), -1, np.int16)
    labels[0][masks[0]] = 0
    labels[0, 50:56, 50:56] = 1
    seg = {"nsaid": np.array([1, 2]), "ra": np.array([HOST_RA, HOST_RA]),
           "dec": np.array([HOST_DEC, HOST_DEC]), "host_masks": masks, "labels": labels,
           "det_classes": np.array([[2, 1], [0, 0]]), "det_scores": np.array([[0.9, 0.7],
                                                                             [np.nan] * 2]),
           "size": np.array(SIZE), "pixscale": np.array(PIX),
           "images": np.zeros((2, SIZE, SIZE, 3), np.uint8)}
    hosts = pd.DataFrame({"NSAID": [1, 2], "morphology_reason": pd.array(
        [pd.NA, "no_detection"], dtype="string")})
    return seg, hosts


def test_source_columns_rows_dtypes_and_in_host_mask(tmp_path):
    seg, hosts = _segmentation()
    # inside the mask, outside it (in the image), on the second detection, off the image,
    # host flagged, no host, NaN position
    xs = np.array([30.0, 10.0, 53.0, -40.0, 30.0, 30.0, 30.0])
    ys = np.array([25.0, 10.0, 52.0, 30.0, 30.0, 30.0, 30.0])
    ra, dec = _sky(xs, ys)
    ra[6] = np.nan
    cuts = pd.DataFrame({"source_id": [f"s{i}" for i in range(7)], "ra": ra, "dec": dec,
                         "host_nsaid": [1, 1, 1, 1, 2, -1, 1]})
    # the position round trip is exact to well under a pixel
    xy = stage.host_pixels(ra[:3], dec[:3], HOST_RA, HOST_DEC, SIZE, PIX)
    np.testing.assert_allclose(xy, np.c_[xs[:3], ys[:3]], atol=1e-6)

    np.savez(tmp_path / "masks.npz", **seg)
    cuts.to_parquet(tmp_path / "cuts.parquet")
    hosts.to_parquet(tmp_path / "hosts.parquet")
    out = stage.catalog_columns(tmp_path / "cuts.parquet", tmp_path / "hosts.parquet",
                                tmp_path / "masks.npz", tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    for df in (out, back):
        assert list(df["source_id"]) == list(cuts["source_id"])
        assert {c: str(df[c].dtype) for c in stage.SOURCE_COLUMNS} == {
            "in_host_mask": "boolean", "morph_class": "string", "morph_score": "float64",
            "morphology_reason": "string"}
    assert out["in_host_mask"].tolist()[:4] == [True, False, False, False]
    assert out["in_host_mask"][4:].isna().all()
    assert out["morph_class"].tolist()[:3] == ["elliptical", pd.NA, "spiral"]
    np.testing.assert_allclose(out["morph_score"][:3], [0.9, np.nan, 0.7])
    assert out["morphology_reason"].tolist() == [pd.NA] * 4 + [
        "host_no_detection", "no_host", "bad_position"]


def test_crosscheck_counts():
    morph = pd.DataFrame({"source_id": list("abcd"),
                          "in_host_mask": pd.array([True, False, True, pd.NA], "boolean")})
    shreds = pd.DataFrame({"source_id": list("abcd"),
                           "is_shred": pd.array([True, False, False, True], "boolean")})
    t = stage.crosscheck_table(shreds, morph)
    assert t.loc["True", "True"] == 1 and t.loc["False", "False"] == 1
    assert t.loc["True", "False"] == 1 and t.loc["null", "True"] == 1
    assert int(t.to_numpy().sum()) == 4


@pytest.fixture(scope="module")
def tiny_model():
    from catclean.morphology.network import build_model

    return build_model(preset("tiny", image_size=64))


def test_bad_host_images_are_flagged_not_fatal(tmp_path, tiny_model):
    from catclean.morphology.infer import segment_hosts

    rng = np.random.default_rng(0)
    blank = np.full((SIZE, SIZE, 3), 40, np.uint8)
    nan = rng.uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    nan[5, 5, 0] = np.nan
    noise = rng.normal(20, 3, (SIZE, SIZE, 3)).clip(0, 255).astype(np.float32)
    # min_score 1.0: nothing a (random) network outputs can be a host -> no galaxy found
    table, masks, dets = segment_hosts(tiny_model, np.stack([blank, nan, noise]),
                                       pixscale=PIX, min_score=1.0, batch_size=4,
                                       with_detections=True)
    assert table["morphology_reason"].tolist()[:2] == ["blank_image", "nan_pixels"]
    assert table["morphology_reason"][2] in ("no_detection", "no_host_at_centre")
    assert table["morph_class"].isna().all() and not masks.any()
    assert dets[0] is None and dets[1] is None and dets[2] is not None

    # hosts without an image (no rendered field): flagged rows, sources get host_<reason>
    hosts = pd.DataFrame({"NSAID": [7, 8], "RA": [HOST_RA, HOST_RA + 1],
                          "DEC": [HOST_DEC, HOST_DEC]})
    hosts.to_parquet(tmp_path / "hosts.parquet")
    t = stage.segment(tmp_path / "hosts.parquet", {}, None, size=SIZE, pixscale=PIX,
                      min_score=0.5, batch_size=4, table_path=tmp_path / "t.parquet",
                      masks_path=tmp_path / "m.npz", model=tiny_model)
    assert t["morphology_reason"].tolist() == ["no_host_image"] * 2
    assert list(t["NSAID"]) == [7, 8]
    ra, dec = _sky([30.0], [30.0])
    cuts = pd.DataFrame({"source_id": ["x"], "ra": ra, "dec": dec, "host_nsaid": [7]})
    cuts.to_parquet(tmp_path / "cuts.parquet")
    out = stage.catalog_columns(tmp_path / "cuts.parquet", tmp_path / "t.parquet",
                                tmp_path / "m.npz")
    assert out["morphology_reason"].tolist() == ["host_no_host_image"]
    assert out["in_host_mask"].isna().all()
