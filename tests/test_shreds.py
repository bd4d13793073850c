"""Shred CNN: architecture size, scoring contract (nulls + reasons, one model load, bad
cutouts never stop the job), published SavedModel path, user-labeled data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from catclean.cutouts import CutoutStore, write_store
from catclean.shreds.model import ShredArch, build_shred_cnn

SMALL = ShredArch.from_preset("small", input_size=32, width=0.125, dense=(16, 8))


def test_paper_architecture_parameter_count():
    model = build_shred_cnn(ShredArch.from_preset("paper"))
    n = model.count_params()
    assert abs(n - 10.6e6) / 10.6e6 < 0.05, n  # paper 001 Sec. 2.2: ~10.6M
    convs = [lay for lay in model.layers if type(lay).__name__ == "Conv2D"]
    assert len(convs) == 8
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128, 512, 512]
    assert model.input_shape == (None, 128, 128, 3) and model.output_shape == (None, 2)
    pools = [lay.pool_size for lay in model.layers if type(lay).__name__ == "MaxPooling2D"]
    assert [p[0] for p in pools] == [2, 2, 2, 4]


def test_small_variant_builds_at_small_inputs():
    for size in (48, 64):
        m = build_shred_cnn(ShredArch.from_preset("small", input_size=size, dense=(64, 32)))
        assert m.input_shape == (None, 128, 128, 3)  # always fed the stored 128 px cutouts
        assert m.count_params() < 1e6


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(1)
    model = build_shred_cnn(SMALL)
    path = tmp_path_factory.mktemp("model") / "m.keras"
    model.save(path)
    return model, path


def _store(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"legacy:dr9:{i}" for i in range(7)]
    imgs = rng.integers(0, 255, (7, 128, 128, 3)).astype(np.uint8)
    status = ["ok", "ok", "blank", "corrupt", "ok", "off_footprint", "ok"]
    for i, s in enumerate(status):
        if s != "ok":
            imgs[i] = 0
    write_store(tmp_path / "rgb", ids, imgs, status,
                ["", "", "constant image", "3 non-finite pixels", "", "data over 10%", ""],
                shard_size=3)
    return ids


def test_score_partition_contract(keras_model, tmp_path, monkeypatch):
    import keras

    from catclean.shreds.score import ShredScorer, score_partition

    _, path = keras_model
    ids = _store(tmp_path)
    cuts = pd.DataFrame({"source_id": ids + ["legacy:dr9:99"],
                         "passes_cuts": [True, True, True, True, False, True, True, True],
                         "cut_reason": ["", "", "", "", "r_max", "", "", ""]})
    loads = []
    real_load = keras.saving.load_model
    monkeypatch.setattr(keras.saving, "load_model",
                        lambda *a, **k: loads.append(a) or real_load(*a, **k))
    scorer = ShredScorer(path, kind="keras", batch_size=1)  # many batches, one load
    out = score_partition(cuts, CutoutStore(tmp_path / "rgb"), scorer, batch_size=2)
    assert len(loads) == 1
    assert out.source_id.tolist() == cuts.source_id.tolist()
    assert str(out.p_shred.dtype) == "Float64" and str(out.is_shred.dtype) == "boolean"
    assert str(out.shreds_reason.dtype).startswith("string")
    scored = out.p_shred.notna().to_numpy()
    assert scored.tolist() == [True, True, False, False, False, False, True, False]
    p = out.p_shred.to_numpy(dtype=float, na_value=np.nan)[scored]
    assert np.all((p >= 0) & (p <= 1))
    assert (out.is_shred[scored] == (out.p_shred[scored] >= 0.5)).all()
    reasons = out.shreds_reason.tolist()
    assert reasons[2].startswith("cutout blank") and reasons[3].startswith("cutout corrupt")
    assert reasons[4] == "fails cuts: r_max"
    assert reasons[5].startswith("cutout off_footprint")
    assert reasons[7].startswith("cutout missing")
    assert out.shreds_reason[scored].isna().all()


def test_missing_store_shard_does_not_stop_scoring(keras_model, tmp_path):
    from catclean.shreds.score import ShredScorer, score_partition

    _, path = keras_model
    ids = _store(tmp_path)
    (tmp_path / "rgb" / "shard-00002.npy").unlink()  # lost shard (rows 6)
    cuts = pd.DataFrame({"source_id": ids, "passes_cuts": True, "cut_reason": ""})
    out = score_partition(cuts, CutoutStore(tmp_path / "rgb"), ShredScorer(path),
                          batch_size=1)
    assert out.p_shred.notna().sum() == 3
    assert out.shreds_reason[6].startswith("cutout corrupt")


def test_wrong_input_shape_is_a_clear_error(keras_model):
    from catclean.shreds.score import ShredScorer

    _, path = keras_model
    with pytest.raises(ValueError, match="128 px"):
        ShredScorer(path).predict(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="shred model not found"):
        ShredScorer(path.with_name("nope.keras"))


def test_published_savedmodel_path(keras_model, tmp_path):
    """A SavedModel with the released model's signature (128x128x3 float in [0, 1] ->
    softmax (2,), class 1 = shred) loads through TFSMLayer and scores like the original."""
    from catclean.shreds.score import ShredScorer

    model, _ = keras_model
    export = tmp_path / "CNN_shreds.dms"
    model.export(str(export), verbose=False)
    scorer = ShredScorer(export, kind="savedmodel")
    assert scorer.loader == "TFSMLayer"
    imgs = np.random.default_rng(2).integers(0, 255, (5, 128, 128, 3)).astype(np.uint8)
    ref = np.asarray(model(imgs.astype(np.float32) / 255.0))[:, 1]
    assert np.allclose(scorer.predict(imgs), ref, atol=1e-5)


def test_load_labeled_images(tmp_path):
    from PIL import Image

    from catclean.shreds.data import load_labeled_images

    rng = np.random.default_rng(0)
    for i in range(4):
        arr = rng.integers(0, 255, (128, 128, 3)).astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / (f"{i}.png" if i % 2 else f"{i}.jpg"))
    (tmp_path / "labels.csv").write_text("source_id,label\n0,galaxy\n1,shred\n2,0\n3,1\n")
    images, labels, meta = load_labeled_images(tmp_path / "labels.csv", tmp_path)
    assert images.shape == (4, 128, 128, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 1, 0, 1]
    (tmp_path / "bad.csv").write_text("source_id,label\n0,star\n")
    with pytest.raises(ValueError, match="galaxy/shred"):
        load_labeled_images(tmp_path / "bad.csv", tmp_path)
    (tmp_path / "miss.csv").write_text("source_id,label\n42,shred\n")
    with pytest.raises(ValueError, match="no image"):
        load_labeled_images(tmp_path / "miss.csv", tmp_path)


def test_splits_are_grouped_and_disjoint():
    from catclean.shreds.train import group_split, kfold

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 10)
    rest, test = group_split(len(groups), groups, 0.2, rng)
    assert not set(groups[rest]) & set(groups[test])
    assert 0.1 < len(test) / len(groups) <= 0.2
    folds = kfold(rest, groups, 5, rng)
    for tr, va in folds:
        assert not set(groups[tr]) & set(groups[va])
        assert set(tr) | set(va) == set(rest)


def test_summary_fraction_purity_completeness():
    from catclean.shreds.summary import summarize

    shreds = pd.DataFrame({
        "source_id": list("abcdef"),
        "p_shred": pd.array([0.9, 0.8, 0.1, 0.2, None, None], dtype="Float64"),
        "is_shred": pd.array([True, True, False, False, None, None], dtype="boolean"),
        "shreds_reason": pd.array([None] * 4 + ["fails cuts: r_max", "cutout blank"],
                                  dtype="string")})
    cuts = pd.DataFrame({"source_id": list("abcdef"),
                         "passes_cuts": [True, True, True, True, False, True],
                         "truth_label": ["shred", "galaxy", "shred", "galaxy", "shred", "star"]})
    s = summarize("legacy", shreds, cuts)
    assert s["n_scored"] == 4 and s["n_shred"] == 2 and s["shred_fraction"] == 0.5
    assert s["purity"] == 0.5 and s["completeness"] == 0.5
    assert s["null_reasons"] == {"fails cuts": 1, "cutout blank": 1}


def test_mixed_bfloat16_training_keeps_float32_probabilities(tmp_path):
    """precision: mixed_bfloat16 (the fast paper-size setting, docs/shreds.md) trains,
    gives float32 softmax probabilities that sum to 1, saves and reloads, and leaves the
    global dtype policy at float32 for the rest of the process."""
    import keras

    from catclean.shreds.train import TrainConfig, predict_proba, train_fold

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (24, 128, 128, 3)).astype(np.uint8)
    y = np.arange(24) % 2
    cfg = TrainConfig.from_preset("small", batch_size=8, max_epochs=1, patience=1,
                                  precision="mixed_bfloat16")
    model, hist = train_fold(SMALL, cfg, x[:16], y[:16], x[16:], y[16:], fold_seed=3)
    assert np.isfinite(hist["loss"]).all() and len(hist["loss"]) == 1
    assert model.get_layer("conv1_1").compute_dtype == "bfloat16"
    assert model.get_layer("softmax").compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"
    p = predict_proba(model, x[16:])
    assert p.dtype.kind == "f" and ((p >= 0) & (p <= 1)).all()
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert np.allclose(predict_proba(again, x[16:]), p, atol=1e-6)
    with pytest.raises(ValueError, match="precision 'half'"):
        train_fold(SMALL, TrainConfig.from_preset("small", max_epochs=1, precision="half"),
                   x[:16], y[:16],
                   x[16:], y[16:], fold_seed=3)


def test_score_image_dir_flags_bad_files(keras_model, tmp_path):
    """The `score` command's core: one row per image file, bad files flagged, not fatal."""
    from PIL import Image

    from catclean.shreds.score import score_image_dir

    _, path = keras_model
    rng = np.random.default_rng(4)
    d = tmp_path / "cutouts"
    d.mkdir()
    Image.fromarray(rng.integers(0, 255, (128, 128, 3)).astype(np.uint8)).save(d / "a_grz.png")
    Image.fromarray(rng.integers(0, 255, (256, 256, 3)).astype(np.uint8)).save(d / "b.jpg")
    Image.fromarray(np.full((128, 128, 3), 7, np.uint8)).save(d / "c.png")
    (d / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (d / "notes.txt").write_text("not an image")
    out = score_image_dir(path, d)
    assert out["file"].tolist() == ["a_grz.png", "b.jpg", "c.png", "d.png"]
    assert out["source_id"].tolist() == ["a_grz", "b", "c", "d"]
    assert out["p_shred"].notna().tolist() == [True, True, False, False]
    assert out.loc[2, "reason"] == "blank image"
    assert out.loc[3, "reason"].startswith("unreadable image")
    assert out["is_shred"].isna().tolist() == [False, False, True, True]
    assert ((out["p_shred"].dropna() >= 0) & (out["p_shred"].dropna() <= 1)).all()
    with pytest.raises(ValueError, match="no .png/.jpg cutouts"):
        score_image_dir(path, _empty_dir(tmp_path))


def _empty_dir(tmp_path):
    e = tmp_path / "empty"
    e.mkdir()
    return e


def test_clipnorm_bounds_every_update():
    """clipnorm (preset key, null in the paper) clips the gradient norm RMSprop sees: with
    a tiny clip the first epoch barely moves the weights; without it they move freely."""
    import keras

    from catclean.shreds.model import build_shred_cnn
    from catclean.shreds.train import TrainConfig, train_fold

    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (16, 128, 128, 3)).astype(np.uint8)
    y = np.arange(16) % 2
    keras.utils.set_random_seed(3)
    start = build_shred_cnn(SMALL).get_weights()  # train_fold builds the same with seed 3
    moved = {}
    for clip in (None, 1e-6):
        cfg = TrainConfig.from_preset("small", batch_size=8, max_epochs=1, patience=1,
                                      clipnorm=clip, rotate90=False, flip=False)
        model, _ = train_fold(SMALL, cfg, x, y, x[:4], y[:4], fold_seed=3)
        assert model.optimizer.clipnorm == clip
        moved[clip] = max(float(np.abs(w - w0).max())
                          for w, w0 in zip(model.get_weights(), start))
    assert moved[None] > 1e-4 and moved[1e-6] < 0.05 * moved[None], moved
