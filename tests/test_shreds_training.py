"""CI training of the small shred CNN with the pipeline's own code: a small synthetic
training sky (Legacy fields of low-redshift hosts), held-out test split by host, then
AUC >= 0.9 on the held-out cutouts."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_small_shred_cnn_learns_shreds(tmp_path):
    from catclean.shreds.data import synthetic_training_set
    from catclean.shreds.model import ShredArch
    from catclean.shreds.score import ShredScorer
    from catclean.shreds.train import TrainConfig, cross_validate

    images, labels, meta = synthetic_training_set(
        32, seed=4242, z_range=(0.015, 0.03), sky={"field_max_pix": 1000}, r_max=22.5,
        galaxy_fraction=0.6, workers=2)
    assert len(labels) >= 250 and 0.3 <= labels.mean() <= 0.5
    arch = ShredArch.from_preset("small")
    cfg = TrainConfig.from_preset("small", seed=7, threads=2, batch_size=16, max_epochs=60,
                                  patience=10, folds=5, run_folds=1, test_fraction=0.25)
    res = cross_validate(images, labels, arch, cfg, groups=meta["host_nsaid"].to_numpy(),
                         model_path=tmp_path / "small.keras")
    assert res["n_test"] >= 30
    kept = {k: v for k, v in res["kept"].items() if not k.startswith("roc")}
    print("CI small shred CNN:", len(labels), "cutouts,", kept,
          res["folds"][0]["epochs"], "epochs")
    assert res["kept"]["auc"] >= 0.9, (kept, res["folds"][0]["epochs"], len(labels))
    # the saved model reloads (safe mode) and reproduces the held-out probabilities
    idx = np.asarray(res["test"]["index"])
    p = ShredScorer(tmp_path / "small.keras").predict(images[idx])
    assert np.allclose(p, res["test"]["p_shred"], atol=1e-4)
