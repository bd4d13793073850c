"""Command line for the shred CNN outside Snakemake.

Examples
--------
Build a synthetic training sky and train the paper-size model (1 fold, documented in
docs/shreds.md)::

    python -m catclean.shreds.cli make-set --hosts 180 --chunk 20 --seed 2026 --workers 2 \\
        --field-max-pix 1100 --out results/shreds_paper2/train_set
    python -m catclean.shreds.cli train --set 'results/shreds_paper2/train_set*.part*.npz' \\
        --preset paper --folds 5 --run-folds 1 --precision mixed_bfloat16 \\
        --out results/shreds_paper2/run2

Score a directory of Legacy-viewer cutouts (PNG/JPEG, 128 px over 60") with a model::

    python -m catclean.shreds.cli score --model results/shreds_paper2/run2/shred_cnn.keras \\
        --images cutouts/ --out p_shred.csv

Train on your own labeled cutouts (CSV ``source_id,label`` + ``<source_id>.png``)::

    python -m catclean.shreds.cli train --csv labels.csv --images cutouts/ \\
        --preset paper --out my_model/
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from .train import PRECISIONS

PRESETS = {
    # paper 001 Sec. 2.2 / Fig. 2: 128 px input, full width (10.58M parameters)
    "paper": {"input_size": 128, "width": 1.0, "dense": [2048, 1024]},
    # the small variant used by tests and the default run
    "small": {"input_size": 64, "width": 0.25, "dense": [256, 128]},
}


def _save_set(path, images, labels, meta) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp.npz")
    np.savez(tmp, images=images, labels=labels,
             groups=meta["host_nsaid"].to_numpy() if "host_nsaid" in meta else
             np.arange(len(labels)),
             source_id=meta["source_id"].astype(str).to_numpy(),
             truth_label=meta["truth_label"].astype(str).to_numpy())
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="catclean.shreds.cli")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ms = sub.add_parser("make-set", help="render a synthetic training sky (Legacy)")
    ms.add_argument("--hosts", type=int, default=300)
    ms.add_argument("--seed", type=int, default=777)
    ms.add_argument("--workers", type=int, default=2)
    ms.add_argument("--field-max-pix", type=int, default=500)
    ms.add_argument("--z-range", type=float, nargs=2, default=(0.015, 0.03))
    ms.add_argument("--r-max", type=float, default=22.5)
    ms.add_argument("--chunk", type=int, default=0,
                    help="render hosts in chunks of this many, one <out>.partNNN.npz each; "
                         "existing parts are skipped (resumable)")
    ms.add_argument("--out", required=True)
    tr = sub.add_parser("train", help="held-out test + k-fold CV training")
    tr.add_argument("--set", help="npz from make-set")
    tr.add_argument("--csv", help="labels CSV (source_id,label)")
    tr.add_argument("--images", help="directory of <source_id>.png/.jpg cutouts")
    tr.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    tr.add_argument("--folds", type=int, default=5)
    tr.add_argument("--run-folds", type=int, default=None)
    tr.add_argument("--max-epochs", type=int, default=100)
    tr.add_argument("--patience", type=int, default=5)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--threads", type=int, default=2)
    tr.add_argument("--seed", type=int, default=777)
    tr.add_argument("--max-seconds", type=float, default=None,
                    help="wall-clock cap per fold (the best weights so far are kept)")
    tr.add_argument("--precision", default="float32", choices=PRECISIONS,
                    help="Keras dtype policy; mixed_bfloat16 is ~3x faster on CPUs with "
                         "AVX512-BF16 (docs/shreds.md)")
    tr.add_argument("--out", required=True)
    sc = sub.add_parser("score", help="score a directory of PNG/JPEG cutouts")
    sc.add_argument("--model", required=True, help=".keras file or SavedModel directory")
    sc.add_argument("--images", required=True, help="directory of <source_id>[_suffix].png/.jpg")
    sc.add_argument("--threshold", type=float, default=0.5)
    sc.add_argument("--batch-size", type=int, default=64)
    sc.add_argument("--out", required=True, help="CSV: file, p_shred, is_shred, reason")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("catclean.shreds.cli")
    if a.cmd == "make-set":
        from .data import synthetic_training_set

        t0 = time.time()
        sky = {"field_max_pix": a.field_max_pix, "background_density": 40000,
               "star_density": 3000}
        if a.chunk:
            for k, start in enumerate(range(0, a.hosts, a.chunk)):
                part = Path(f"{a.out}.part{k:03d}.npz")
                if part.exists():
                    continue
                images, labels, meta = synthetic_training_set(
                    a.hosts, a.seed, z_range=tuple(a.z_range), r_max=a.r_max,
                    workers=a.workers, sky=sky, host_slice=slice(start, start + a.chunk),
                    galaxy_fraction=None)
                _save_set(part, images, labels, meta)
                log.info("wrote %s: %d cutouts, %d shreds (%.0f s)", part, len(labels),
                         int(labels.sum()), time.time() - t0)
            return 0
        images, labels, meta = synthetic_training_set(
            a.hosts, a.seed, z_range=tuple(a.z_range), r_max=a.r_max, workers=a.workers,
            sky=sky)
        _save_set(a.out, images, labels, meta)
        log.info("wrote %s: %d cutouts, %d shreds (%.0f s)", a.out, len(labels),
                 int(labels.sum()), time.time() - t0)
        return 0
    if a.cmd == "score":
        from .score import score_image_dir

        table = score_image_dir(a.model, a.images, threshold=a.threshold,
                                batch_size=a.batch_size)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(a.out, index=False)
        n_ok, n_shred = int(table["p_shred"].notna().sum()), int(table["is_shred"].sum())
        log.info("scored %d of %d images in %s: %d shreds (%.1f%%), median p_shred %.3f; "
                 "wrote %s", n_ok, len(table), a.images, n_shred,
                 100.0 * n_shred / max(n_ok, 1),
                 float(table["p_shred"].astype(float).median()), a.out)
        return 0
    from .model import ShredArch
    from .train import TrainConfig, cross_validate, save_json

    if a.set:
        import glob

        from .data import balance

        files = sorted(glob.glob(a.set)) or [a.set]
        ds = [np.load(f, allow_pickle=False) for f in files]
        images = np.concatenate([d["images"] for d in ds])
        labels = np.concatenate([d["labels"] for d in ds])
        groups = np.concatenate([d["groups"] for d in ds])
        sets = [Path(f).name.split(".part")[0] for f in files]
        if len(set(sets)) > 1:
            # host ids restart in every make-set run: key the groups by set name too, so
            # that hosts of different sets never share a group (parts of one set are disjoint)
            groups = np.concatenate([np.char.add(s + ":", d["groups"].astype(str))
                                     for s, d in zip(sets, ds)])
        keep = balance(labels, 0.6, np.random.default_rng([a.seed, 77]))
        images, labels, groups = images[keep], labels[keep], groups[keep]
        log.info("%d files: %d cutouts after 60/40 balancing", len(files), len(labels))
    else:
        from .data import load_labeled_images

        images, labels, _meta = load_labeled_images(a.csv, a.images)
        groups = None
    arch = ShredArch.from_config(PRESETS[a.preset])
    cfg = TrainConfig(learning_rate=a.lr, batch_size=a.batch_size, max_epochs=a.max_epochs,
                      patience=a.patience, folds=a.folds, run_folds=a.run_folds,
                      threads=a.threads, seed=a.seed, max_seconds=a.max_seconds,
                      precision=a.precision)
    out = Path(a.out)
    t0 = time.time()
    log.info("training %s preset on %d cutouts (%d shreds)", a.preset, len(labels),
             int(labels.sum()))
    res = cross_validate(images, labels, arch, cfg, groups=groups,
                         model_path=out / "shred_cnn.keras")
    res["wall_seconds"] = round(time.time() - t0, 1)
    save_json(res, out / "cv.json")
    log.info("done in %.0f s: mean test AUC %s accuracy %.4f; kept fold test AUC %s acc %.4f",
             res["wall_seconds"], res["mean"]["auc"], res["mean"]["accuracy"],
             res["kept"]["auc"], res["kept"]["accuracy"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
