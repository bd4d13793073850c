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
    import keras

    from catclean.morphology.network import build_model

    keras.utils.set_random_seed(0)  # untrained, but the same weights every run
    return build_model(preset("tiny", image_size=64))


def _stars(rng):
    """Sky noise plus three stars, none at the centre: a field without a galaxy."""
    img = rng.normal(20, 3, (SIZE, SIZE, 3))
    yy, xx = np.indices((SIZE, SIZE))
    for x, y in ((8, 12), (50, 9), (14, 52)):
        img += 200 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 3.0)[..., None]
    return img.clip(0, 255).astype(np.uint8)


def _bad_image(kind: str) -> np.ndarray:
    rng = np.random.default_rng(1)
    good = rng.uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    if kind == "empty":
        return np.zeros((SIZE, SIZE, 3), np.uint8)
    if kind == "blank":
        return np.full((SIZE, SIZE, 3), 40, np.uint8)
    if kind == "all_nan":
        return np.full((SIZE, SIZE, 3), np.nan, np.float32)
    if kind == "one_nan":
        good[5, 5, 0] = np.nan
        return good
    if kind == "inf":
        good[30, 30, 2] = np.inf
        return good
    if kind == "sky_only":
        return rng.normal(20, 3, (SIZE, SIZE, 3)).clip(0, 255).astype(np.uint8)
    if kind == "stars_only":
        return _stars(rng)
    if kind == "no_image":
        return np.zeros((SIZE, SIZE, 3), np.uint8)
    raise ValueError(kind)


NO_GALAXY = {"no_detection", "no_host_at_centre"}


@pytest.mark.parametrize("kind,reasons", [
    ("empty", {"blank_image"}), ("blank", {"blank_image"}), ("all_nan", {"nan_pixels"}),
    ("one_nan", {"nan_pixels"}), ("inf", {"nan_pixels"}), ("sky_only", NO_GALAXY),
    ("stars_only", NO_GALAXY), ("no_image", {"no_host_image"})])
def test_bad_host_image_gives_flagged_rows(tmp_path, tiny_model, kind, reasons):
    """Empty / blank / NaN / galaxy-free host images: segment_hosts and the catalog
    columns give flagged rows with a reason, never an exception. (No galaxy: the
    untrained network's scores stay below ``min_score`` 0.5, as a trained one's do on
    such fields -- docs/morphology.md.)"""
    hosts = pd.DataFrame({"NSAID": [7], "RA": [HOST_RA], "DEC": [HOST_DEC]})
    image = _bad_image(kind)[None]
    table = stage.segment_images(hosts, image, np.array([kind != "no_image"]), tiny_model,
                                 size=SIZE, pixscale=PIX, min_score=0.5, batch_size=4,
                                 table_path=tmp_path / "t.parquet",
                                 masks_path=tmp_path / "m.npz")
    back = pd.read_parquet(tmp_path / "t.parquet")
    for t in (table, back):
        assert t["morphology_reason"][0] in reasons
        assert t["morph_class"].isna().all() and t["morph_score"].isna().all()
        assert t["centroid_dx_pix"].isna().all() and list(t["NSAID"]) == [7]
    seg = stage.read_segmentation(tmp_path / "m.npz")
    assert not seg["host_masks"].any()
    if table["morphology_reason"][0] != "no_host_at_centre":  # else: detections elsewhere
        assert (seg["labels"] == -1).all()
    # sources on, beside and nowhere near the host; one with a NaN position
    ra, dec = _sky([31.5, 10.0, 200.0, 0.0], [31.5, 50.0, 30.0, 0.0])
    ra[3] = np.nan
    cuts = pd.DataFrame({"source_id": list("abcd"), "ra": ra, "dec": dec,
                         "host_nsaid": [7, 7, 7, 7]})
    cuts.to_parquet(tmp_path / "cuts.parquet")
    out = stage.catalog_columns(tmp_path / "cuts.parquet", tmp_path / "t.parquet",
                                tmp_path / "m.npz", tmp_path / "out.parquet")
    why = f"host_{table['morphology_reason'][0]}"
    assert out["morphology_reason"].tolist() == [why] * 4
    assert out["in_host_mask"].isna().all() and out["morph_class"].isna().all()
    assert out["morph_score"].isna().all()
    assert str(pd.read_parquet(tmp_path / "out.parquet")["in_host_mask"].dtype) == "boolean"


def test_no_hosts_at_all(tmp_path, tiny_model):
    """A partition whose hosts list is empty: every source gets ``no_host``."""
    hosts = pd.DataFrame({"NSAID": pd.array([], "int64"), "RA": [], "DEC": []})
    stage.segment_images(hosts, np.zeros((0, SIZE, SIZE, 3), np.uint8), np.zeros(0, bool),
                         tiny_model, size=SIZE, pixscale=PIX, min_score=0.5, batch_size=4,
                         table_path=tmp_path / "t.parquet", masks_path=tmp_path / "m.npz")
    ra, dec = _sky([30.0], [30.0])
    pd.DataFrame({"source_id": ["x"], "ra": ra, "dec": dec, "host_nsaid": [7]}).to_parquet(
        tmp_path / "cuts.parquet")
    out = stage.catalog_columns(tmp_path / "cuts.parquet", tmp_path / "t.parquet",
                                tmp_path / "m.npz")
    assert out["morphology_reason"].tolist() == ["no_host"]
    assert out["in_host_mask"].isna().all()


def test_hosts_without_rendered_field(tmp_path, tiny_model):
    """Through :func:`stage.segment`: hosts whose field is missing are flagged."""
    hosts = pd.DataFrame({"NSAID": [7, 8], "RA": [HOST_RA, HOST_RA + 1],
                          "DEC": [HOST_DEC, HOST_DEC]})
    hosts.to_parquet(tmp_path / "hosts.parquet")
    t = stage.segment(tmp_path / "hosts.parquet", {8: tmp_path / "missing.fits"}, None,
                      size=SIZE, pixscale=PIX, min_score=0.5, batch_size=4,
                      table_path=tmp_path / "t.parquet", masks_path=tmp_path / "m.npz",
                      model=tiny_model)
    assert t["morphology_reason"].tolist() == ["no_host_image"] * 2
    assert list(t["NSAID"]) == [7, 8]
