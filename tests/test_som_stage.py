"""The som stage functions (catclean.som.stage) on a small synthetic CutoutStore: one row
per source with the catalog dtypes, flagged rows for missing / blank / NaN cutouts,
p_shred_som equal to the BMU's annotated shred fraction, determinism for a seed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from catclean.config import default_config, preset_settings
from catclean.cutouts import write_store
from catclean.io import read_parquet, write_parquet
from catclean.som import stage
from catclean.som.pinkio import load_som, read_images

S = 32  # grz cube side of the test store


def _blob(rng, elong, angle, shred):
    y, x = np.mgrid[:S, :S] - (S - 1) / 2
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    img = np.exp(-0.5 * ((u / (2.5 * elong)) ** 2 + (v / 2.5) ** 2))
    if shred:  # a bright knot off centre
        img += 0.8 * np.exp(-0.5 * ((u - 6) ** 2 + v**2) / 1.5**2)
    cube = img[..., None] * np.array([0.6, 1.0, 1.4]) + rng.normal(0, 0.02, (S, S, 3))
    return cube.astype(np.float32)


@pytest.fixture(scope="module")
def partition(tmp_path_factory):
    """One partition: 40 ok cutouts (half 'shred'), one blank, one NaN cube, one constant
    cube, one off-footprint, one source missing from the store."""
    root = tmp_path_factory.mktemp("som")
    rng = np.random.default_rng(3)
    ids, cubes, status, labels = [], [], [], []
    for i in range(40):
        ids.append(f"legacy:dr9:{i}")
        cubes.append(_blob(rng, 1.0 + 1.5 * (i % 2), rng.uniform(0, np.pi), i % 4 < 2))
        status.append("ok")
        labels.append("shred" if i % 4 < 2 else ("galaxy" if i % 8 != 7 else "star"))
    for name, cube, st in (("blank", np.zeros((S, S, 3)), "blank"),
                           ("nan", np.full((S, S, 3), np.nan), "ok"),
                           ("const", np.full((S, S, 3), 0.5), "ok"),
                           ("off", np.zeros((S, S, 3)), "off_footprint")):
        ids.append(f"legacy:dr9:{name}")
        cubes.append(np.asarray(cube, np.float32))
        status.append(st)
        labels.append("galaxy")
    write_store(root / "grz", ids, np.stack(cubes), status, meta={"kind": "grz"})
    all_ids = [*ids, "legacy:dr9:missing"]
    cuts = pd.DataFrame({"source_id": pd.Series(all_ids, dtype="string"),
                         "passes_cuts": [True] * len(all_ids),
                         "truth_label": pd.Series([*labels, "shred"], dtype="string")})
    write_parquet(cuts, root / "cuts.parquet")
    return root


def _settings(**extra):
    over = {"som": {"presets": {"small": {
        "rows": 3, "cols": 3, "image_dim": 16,
        "schedule": [{"sigma": 1.0, "damping": 0.3, "numrot": 4, "epochs": 1},
                     {"sigma": 0.5, "damping": 0.1, "numrot": 8, "epochs": 1}], **extra}}}}
    return default_config(over)


@pytest.fixture(scope="module")
def trained(partition):
    cfg = _settings()
    settings = preset_settings(cfg, "som")
    out = partition / "model"
    parts = [(str(partition / "grz"), str(partition / "cuts.parquet"))]
    stage.train(parts, settings, "all", 7, out / "som.bin", out / "som.json",
                out / "train.bin")
    mapping = stage.map_partition(partition / "cuts.parquet", partition / "grz",
                                  out / "som.bin", settings, 8, out / "map.parquet")
    return cfg, settings, out, mapping


def test_config_presets():
    cfg = default_config()
    small, paper = cfg["som"]["presets"]["small"], cfg["som"]["presets"]["paper"]
    assert cfg["som"]["preset"] == "small" and cfg["som"]["annotation"]["source"] == "truth"
    assert (small["rows"], small["cols"], small["image_dim"]) == (8, 8, 32)
    assert [(s["sigma"], s["damping"], s["numrot"], s["epochs"]) for s in paper["schedule"]] == [
        (2.5, 0.1, 180, 5), (1.5, 0.05, 180, 5), (0.7, 0.05, 360, 10)]
    assert (paper["rows"], paper["cols"], paper["flip"]) == (10, 10, True)
    stage.som_settings(small), stage.som_settings(paper)  # valid SOMSettings


def test_train_writes_pink_files(trained):
    _, settings, out, _ = trained
    som = load_som(out / "som.bin")
    assert som.weights.shape[:2] == (9, 3) and som.image_dim == 16
    rec = json.loads((out / "som.json").read_text())
    assert rec["n_train"] == 40 and len(rec["history"]) == 2
    imgs = read_images(out / "train.bin").data
    assert imgs.shape == (40, 3, 16, 16) and 0 <= imgs.min() and imgs.max() <= 1


def test_mapping_rows_dtypes_reasons(trained, partition):
    mapping = trained[3]
    cuts = read_parquet(partition / "cuts.parquet")
    assert mapping["source_id"].tolist() == cuts["source_id"].tolist()
    back = stage.read_mapping(trained[2] / "map.parquet")
    for df in (mapping, back):
        assert {c: str(df[c].dtype) for c in stage.MAPPING_COLUMNS} == {
            "som_bmu_row": "Int64", "som_bmu_col": "Int64", "som_distance": "float64",
            "som_transform": "Int64", "som_rotation_deg": "float64", "som_flip": "boolean",
            "som_reason": "string"}
    pd.testing.assert_frame_equal(back, mapping)
    arrow = pq.read_schema(trained[2] / "map.parquet")
    assert {c: str(arrow.field(c).type).replace("large_", "")
            for c in stage.MAPPING_COLUMNS} == {
        "som_bmu_row": "int64", "som_bmu_col": "int64", "som_distance": "double",
        "som_transform": "int64", "som_rotation_deg": "double", "som_flip": "bool",
        "som_reason": "string"}
    why = dict(zip(mapping.source_id, mapping.som_reason))
    assert why["legacy:dr9:missing"] == "no_cutout"
    assert why["legacy:dr9:blank"] == "blank_image"
    assert why["legacy:dr9:nan"] == "nan_pixels"
    assert why["legacy:dr9:const"] == "blank_image"
    assert why["legacy:dr9:off"] == "off_footprint"
    ok = mapping.som_reason.isna()
    assert ok.sum() == 40
    assert mapping.loc[ok, ["som_bmu_row", "som_bmu_col", "som_transform"]].notna().all().all()
    assert mapping.loc[~ok, ["som_bmu_row", "som_distance", "som_flip"]].isna().all().all()
    assert mapping.loc[ok, "som_bmu_row"].between(0, 2).all()
    assert mapping.loc[ok, "som_rotation_deg"].isin([0, 45, 90, 135, 180, 225, 270, 315]).all()
    assert (mapping.loc[ok, "som_transform"] >= 8).eq(mapping.loc[ok, "som_flip"]).all()


def test_annotation_and_catalog_columns(trained, partition, tmp_path):
    cfg, _, out, mapping = trained
    ann = cfg["som"]["annotation"]
    table = stage.annotate([out / "map.parquet"], [partition / "cuts.parquet"], out / "som.bin",
                           ann, tmp_path / "neurons.csv")
    assert table["n_mapped"].sum() == 40 and table["n_annotated"].sum() == 35  # 5 stars
    cols = stage.catalog_columns(out / "map.parquet", tmp_path / "neurons.csv",
                                 tmp_path / "som.parquet")
    assert len(cols) == len(mapping) and cols["p_shred_som"].dtype == np.float64
    p = cols["p_shred_som"].dropna()
    assert len(p) > 0 and p.between(0, 1).all()
    assert cols.loc[cols.som_reason.notna(), "p_shred_som"].isna().all()
    # p_shred_som = shred fraction among the annotated (galaxy/shred) members of the BMU
    truth = read_parquet(partition / "cuts.parquet").set_index("source_id")["truth_label"]
    df = cols[cols.som_reason.isna()].assign(t=lambda d: truth.reindex(d.source_id).to_numpy())
    for _, grp in df.groupby(["som_bmu_row", "som_bmu_col"]):
        lab = grp["t"][grp["t"].isin(["galaxy", "shred"])]
        expect = (lab == "shred").mean() if len(lab) else np.nan
        np.testing.assert_allclose(grp["p_shred_som"].to_numpy(), expect)
    assert str(pq.read_schema(tmp_path / "som.parquet").field("p_shred_som").type) == "double"


def test_csv_annotation(trained, partition, tmp_path):
    _, _, out, mapping = trained
    labels = pd.DataFrame({"bmu_y": [0, 1], "bmu_x": [0, 1], "P_sidelobe": [25.0, 80.0]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    ann = {"source": "csv", "positive_label": "shred", "min_annotated": 1}
    stage.annotate([out / "map.parquet"], [partition / "cuts.parquet"], out / "som.bin", ann,
                   tmp_path / "neurons.csv", labels_csv=tmp_path / "labels.csv")
    cols = stage.catalog_columns(out / "map.parquet", tmp_path / "neurons.csv")
    key = list(zip(cols.som_bmu_row.fillna(-1), cols.som_bmu_col.fillna(-1)))
    expect = [{(0, 0): 0.25, (1, 1): 0.8}.get(k, np.nan) for k in key]
    np.testing.assert_allclose(cols["p_shred_som"].to_numpy(), expect)


def test_deterministic_for_a_seed(trained, partition, tmp_path):
    _, settings, out, mapping = trained
    parts = [(str(partition / "grz"), str(partition / "cuts.parquet"))]
    stage.train(parts, settings, "all", 7, tmp_path / "a.bin", tmp_path / "a.json")
    np.testing.assert_array_equal(load_som(tmp_path / "a.bin").weights,
                                  load_som(out / "som.bin").weights)
    again = stage.map_partition(partition / "cuts.parquet", partition / "grz",
                                tmp_path / "a.bin", settings, 8)
    pd.testing.assert_frame_equal(again, mapping)
    stage.train(parts, settings, "all", 8, tmp_path / "b.bin", tmp_path / "b.json")
    assert not np.array_equal(load_som(tmp_path / "b.bin").weights,
                              load_som(out / "som.bin").weights)


def test_max_train_images_and_passes_cuts(partition):
    settings = preset_settings(_settings(max_train_images=10), "som")
    parts = [(str(partition / "grz"), str(partition / "cuts.parquet"))]
    imgs, ids = stage.training_images(parts, settings, "all", 1)
    assert imgs.shape == (10, 3, 16, 16) and len(set(ids)) == 10
    assert stage.training_images(parts, settings, "all", 1)[1] == ids


def test_cli_train_and_map(partition, tmp_path):
    from catclean.cli import main

    store, cuts = str(partition / "grz"), str(partition / "cuts.parquet")
    over = ["--set", "som.presets.small.rows=2", "--set", "som.presets.small.cols=2",
            "--set", "som.presets.small.image_dim=16",
            "--set", "som.presets.small.schedule=[{sigma: 1, damping: 0.2, numrot: 4, "
                     "epochs: 1}]"]
    assert main(["som", "train", "--store", store, "--cuts", cuts, "--out",
                 str(tmp_path / "m"), *over]) == 0
    assert main(["som", "map", "--som", str(tmp_path / "m" / "som.bin"), "--store", store,
                 "--cuts", cuts, "--out", str(tmp_path / "o.parquet"), *over]) == 0
    assert len(read_parquet(tmp_path / "o.parquet")) == 45
