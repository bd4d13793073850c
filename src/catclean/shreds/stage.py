"""The shreds stage (paper 001): the functions its rules and ``catclean shreds`` call.

- :func:`make_training_set` (rule ``make_shred_training_set``, ``catclean shreds
  make-set``): labeled RGB cutouts, from a synthetic training sky or the user's CSV;
- :func:`train` (rule ``train_shred_cnn``, ``catclean shreds train``): held-out test +
  k-fold CV (paper 001 Sec. 2.2), the kept model and ``cv.json``;
- :func:`prepare_inference` (rule ``prepare_shred_inference``): the model's int8 form and
  inference card (accuracy guards of bf16 / int8 against float32, throughputs);
- :func:`evaluate` (rule ``evaluate_shreds``): metrics JSON, ROC (Fig. 3), examples (Fig. 4);
- :func:`score` (rule ``score_shreds``): p_shred / is_shred for one catalog partition;
  :func:`score_images` (``catclean shreds score``) for a directory of PNG/JPEG cutouts;
- :func:`summary` (rule ``shreds_summary``): shred fraction per survey.

``training`` is the resolved ``shreds.training`` section, ``settings`` the chosen preset
(:func:`catclean.config.preset_settings`).
"""

from __future__ import annotations

import glob
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def build_training_set(training: dict, seed: int, rgb_size: int, rgb_pixscale: float,
                       radius_kpc: float, cosmology: dict, workers: int = 1,
                       host_slice: slice | None = None, balanced: bool = True) -> dict:
    """Labeled cutouts in memory: ``images, labels, groups, source_id, truth_label``.

    ``training.source`` synthetic: a training sky of seed ``seed + training.seed_offset``
    (host-grouped); labeled: the user's CSV + images (one group per cutout).
    ``host_slice`` / ``balanced=False`` render a chunk of the hosts unbalanced (the
    parts are balanced together by :func:`load_training_set`).
    """
    from ..runtime import progress
    from .data import load_labeled_images, synthetic_training_set

    if training["source"] == "labeled":
        images, labels, meta = load_labeled_images(training["labeled"]["csv"],
                                                   training["labeled"]["images"], size=rgb_size)
        groups = np.arange(len(labels))
    else:
        n = int(training["n_hosts"])
        bar = progress(range(n), desc="training fields", unit="field")
        images, labels, meta = synthetic_training_set(
            n, int(seed) + int(training["seed_offset"]), z_range=tuple(training["z_range"]),
            log_mass_range=tuple(training["log_mass_range"]),
            ra_range=tuple(training["ra_range"]), dec_range=tuple(training["dec_range"]),
            sky={k: training[k] for k in ("field_max_pix", "background_density",
                                          "star_density", "realism")},
            radius_kpc=radius_kpc, cosmology=cosmology, r_max=training["r_max"],
            galaxy_fraction=training["galaxy_fraction"] if balanced else None,
            size=int(rgb_size), pixscale=float(rgb_pixscale), workers=workers,
            progress=lambda k: bar.update(k), host_slice=host_slice)
        bar.close()
        groups = meta["host_nsaid"].to_numpy()
    return {"images": images, "labels": labels, "groups": groups,
            "source_id": meta["source_id"].astype(str).to_numpy(),
            "truth_label": meta["truth_label"].astype(str).to_numpy()}


def save_training_set(path, data: dict) -> None:
    """Write a training set atomically (``.npz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)


def make_training_set(out, training: dict, seed: int, rgb_size: int, rgb_pixscale: float,
                      radius_kpc: float, cosmology: dict, workers: int = 1,
                      chunk: int = 0) -> None:
    """Build and save the training set (paper 001 Sec. 2.1).

    ``chunk`` > 0 (command line, large sets): render the synthetic hosts ``chunk`` at a
    time, unbalanced, into ``<out>.partNNN.npz``; existing parts are skipped (resumable).

    Raises
    ------
    ValueError
        A set too small to train on (fewer than 10 cutouts or 3 of a class).
    """
    args = (training, seed, rgb_size, rgb_pixscale, radius_kpc, cosmology, workers)
    if chunk:
        for k, start in enumerate(range(0, int(training["n_hosts"]), chunk)):
            part = Path(f"{out}.part{k:03d}.npz")
            if not part.exists():
                save_training_set(part, build_training_set(
                    *args, host_slice=slice(start, start + chunk), balanced=False))
                log.info("wrote %s", part)
        return
    data = build_training_set(*args)
    labels = data["labels"]
    log.info("training set: %d cutouts, %d shreds (%.0f%%)", len(labels), int(labels.sum()),
             100 * labels.mean() if len(labels) else 0)
    if len(labels) < 10 or labels.sum() < 3 or (labels == 0).sum() < 3:
        raise ValueError(f"shred training set too small: {len(labels)} cutouts, "
                         f"{int(labels.sum())} shreds; raise shreds.training.n_hosts")
    save_training_set(out, data)


def join_parts(pattern) -> tuple[dict, int]:
    """``images`` and, where every file holds them, ``labels`` and ``groups`` (else None)
    of one ``.npz`` or of all files matching a glob (chunked make-set parts), joined as
    they are (unbalanced), and the number of files."""
    files = sorted(glob.glob(str(pattern))) or [str(pattern)]
    ds = [np.load(f, allow_pickle=False) for f in files]
    for f, d in zip(files, ds):
        if "images" not in d:
            raise KeyError(f"{f} has no 'images' array")
    if len(ds) == 1:
        return {k: ds[0][k] if k in ds[0] else None
                for k in ("images", "labels", "groups")}, 1
    data = {k: np.concatenate([d[k] for d in ds]) if all(k in d for d in ds) else None
            for k in ("images", "labels", "groups")}
    sets = [Path(f).name.split(".part")[0] for f in files]
    if data["groups"] is not None and len(set(sets)) > 1:
        # host ids restart in every make-set run: key the groups by set name too, so
        # that hosts of different sets never share a group (parts of one set are disjoint)
        data["groups"] = np.concatenate([np.char.add(s + ":", d["groups"].astype(str))
                                         for s, d in zip(sets, ds)])
    return data, len(files)


def load_training_set(pattern, seed: int, galaxy_fraction: float) -> dict:
    """``images, labels, groups`` of one ``.npz`` (as saved), or of several files matching
    a glob (chunked parts, balanced together to ``galaxy_fraction`` galaxies)."""
    from .data import balance

    data, n_files = join_parts(pattern)
    missing = [k for k, v in data.items() if v is None]
    if missing:
        raise KeyError(f"training set {pattern} lacks {missing}")
    if n_files == 1:
        return data
    keep = balance(data["labels"], galaxy_fraction, np.random.default_rng([seed, 77]))
    log.info("%d files: %d cutouts after balancing", n_files, len(keep))
    return {k: v[keep] for k, v in data.items()}


def train(data: dict, settings: dict, seed: int, threads: int, model_path, cv_path,
          folds_dir=None, init_model=None) -> dict:
    """Held-out test + k-fold CV training of the preset ``settings`` (paper 001 Sec. 2.2):
    the kept model to ``model_path`` (``.keras``), the CV record to ``cv_path`` and, with
    ``folds_dir``, every fold's model (``fold<k>.keras``, whose spread is ``p_shred_std``).
    ``init_model`` (a ``.keras`` file of the same architecture) starts every fold from its
    weights instead of random ones: a model of an earlier training sky or survey release
    continues on the new one."""
    import keras

    from .model import ShredArch
    from .train import TrainConfig, cross_validate, save_json

    arch = ShredArch.from_config(settings)
    cfg = TrainConfig.from_config(settings, seed=seed, threads=threads)
    log.info("preset %s: arch %s; train %s; %d cutouts", settings["preset"], arch, cfg,
             len(data["labels"]))
    t0 = time.time()
    init = None
    if init_model is not None:
        from ..inference import load_keras

        init = load_keras(init_model).get_weights()
    res = cross_validate(data["images"], data["labels"], arch, cfg, groups=data["groups"],
                         model_path=model_path, fold_models_dir=folds_dir, init_weights=init)
    res["preset"] = settings["preset"]
    if init_model is not None:
        res["init_model"] = str(init_model)
    res["wall_seconds"] = round(time.time() - t0, 1)
    res["n_params"] = int(keras.saving.load_model(model_path, compile=False,
                                                   safe_mode=True).count_params())
    save_json(res, cv_path)
    log.info("mean test AUC %s, accuracy %.4f; kept fold %d (AUC %s)", res["mean"]["auc"],
             res["mean"]["accuracy"], res["kept_fold"], res["kept"]["auc"])
    return res


def evaluate(cv_path, data_path, seed: int, metrics_path, roc_path, examples_path) -> dict:
    """Metrics JSON, ROC (paper 001 Fig. 3) and example grid (Fig. 4) of a trained run."""
    from .plots import examples_figure, roc_figure
    from .train import without_roc

    cv = json.loads(Path(cv_path).read_text())
    d = np.load(data_path, allow_pickle=False)
    idx = np.asarray(cv["test"]["index"], dtype=int)
    p = np.asarray(cv["test"]["p_shred"])
    roc_figure(cv, roc_path)
    examples_figure(d["images"][idx], p, d["labels"][idx], examples_path, seed=seed)
    metrics = {
        "preset": cv.get("preset"), "n_params": cv.get("n_params"), "n_total": cv["n_total"],
        "n_test": cv["n_test"], "n_cv": cv["n_cv"], "folds_run": len(cv["folds"]),
        "folds": [{"fold": f["fold"], "epochs": f["epochs"],
                   "best_val_loss": f["best_val_loss"], "train_seconds": f["train_seconds"],
                   **without_roc(f["test"])}
                  for f in cv["folds"]],
        "mean": cv["mean"], "kept_fold": cv["kept_fold"],
        "kept": without_roc(cv["kept"]),
        "train_wall_seconds": cv.get("wall_seconds"), "config": cv["config"],
        "arch": cv["arch"],
    }
    Path(metrics_path).write_text(json.dumps(metrics, indent=1))
    log.info("test AUC mean %s accuracy %s", cv["mean"]["auc"], cv["mean"]["accuracy"])
    return metrics


def prepare_inference(model_path, data_path, out_dir, seed: int, threshold: float,
                      batch_size: int, n_calibration: int, n_check: int) -> dict:
    """The fast forms of a ``.keras`` shred model and its inference card (issue 16).

    From the model's own training cutouts (``data_path``, seeded draw without
    replacement): ``n_calibration`` calibrate the int8 quantization, ``n_check`` others
    compare bf16 and int8 with float32 (max |dp_shred|, is_shred flips, the change of
    the ROC AUC on their labels; limits :data:`catclean.inference.GUARDS` and
    ``MAX_AUC_CHANGE``). Writes ``out_dir/card.json`` and
    ``out_dir/model.int8.onnx``; a precision that fails its guard is not offered.
    """
    from ..inference import load_keras, prepare

    data = np.load(data_path, allow_pickle=False)
    images, labels = data["images"], data["labels"]
    order = np.random.default_rng([int(seed), 16]).permutation(len(images))
    n_cal = min(int(n_calibration), max(1, len(images) // 4))
    cal, chk = order[:n_cal], order[n_cal:n_cal + int(n_check)]
    if len(chk) == 0:
        raise ValueError(f"{data_path}: {len(images)} cutouts leave none to check the "
                         "precisions on; raise shreds.training.n_hosts")
    model = load_keras(model_path)
    card = prepare(model, images[np.sort(cal)].astype(np.float32) / 255.0,
                   images[np.sort(chk)].astype(np.float32) / 255.0, out_dir,
                   score=lambda o: o[:, 1], threshold=threshold, batch_size=batch_size,
                   labels=labels[np.sort(chk)])
    card.update(model=str(model_path), data=str(data_path))
    (Path(out_dir) / "card.json").write_text(json.dumps(card, indent=1))
    log.info("inference card: auto = %s; %s", card["auto"],
             {k: (v["offered"], v.get("cutouts_per_s")) for k, v in card["precisions"].items()})
    return card


def score(cuts_path, store_path, model_path, kind: str, threshold: float, batch_size: int,
          out_path, precision: str = "float32", inference_dir=None,
          folds_dir=None) -> pd.DataFrame:
    """p_shred / is_shred for every source of one partition (paper 001 Sec. 3.2); one model
    load per job, only when a source needs scoring, in ``precision`` (``auto`` picks from
    the model's inference card in ``inference_dir``). With two or more fold models in
    ``folds_dir``, ``p_shred_std`` is their spread. The provenance records the precision
    used and the number of fold models."""
    from ..cutouts import CutoutStore
    from ..io import read_metadata, read_parquet, write_parquet
    from .score import ShredScorer, score_partition

    cuts = read_parquet(cuts_path)
    need = cuts["passes_cuts"].fillna(False).astype(bool).sum()
    folds = sorted(Path(folds_dir).glob("fold*.keras")) if folds_dir else []
    scorer = ShredScorer(model_path, kind=kind, batch_size=batch_size, precision=precision,
                         inference_dir=inference_dir, fold_paths=folds) if need else None
    out = score_partition(cuts, CutoutStore(store_path), scorer, threshold=threshold)
    log.info("%s: %d rows, %d scored, %d shreds; reasons %s", cuts_path, len(out),
             int(out.p_shred.notna().sum()), int(out.is_shred.fillna(False).sum()),
             out.shreds_reason.str.split(":").str[0].value_counts().to_dict())
    prov = read_metadata(cuts_path)["provenance"]
    prov.update(stage="shreds", model=str(model_path), model_kind=kind, threshold=threshold,
                precision_requested=precision,
                precision=scorer.precision if scorer is not None else None,
                fold_models=len(folds))
    write_parquet(out, out_path, units={"p_shred": "", "p_shred_std": ""}, prov=prov)
    return out


def score_images(model_path, image_dir, threshold: float, batch_size: int,
                 out_path) -> pd.DataFrame:
    """Score a directory of PNG/JPEG cutouts into a CSV (``file, source_id, p_shred,
    is_shred, reason``)."""
    from .score import score_image_dir

    table = score_image_dir(model_path, image_dir, threshold=threshold, batch_size=batch_size)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_path, index=False)
    n_ok, n_shred = int(table["p_shred"].notna().sum()), int(table["is_shred"].sum())
    log.info("scored %d of %d images in %s: %d shreds (%.1f%%); wrote %s", n_ok, len(table),
             image_dir, n_shred, 100.0 * n_shred / max(n_ok, 1), out_path)
    return table


def summary(files: dict, model_kind: str, json_path, html_path) -> list[dict]:
    """Shred fraction per survey (paper 001 Sec. 3.2 finds ~4-5%) and, on the synthetic
    sky, purity / completeness against the truth labels.

    ``files``: per survey, its ``shreds`` and ``cuts`` partition files (told apart by
    their ``/shreds/`` and ``/cuts/`` directories).
    """
    from ..io import read_parquet
    from .summary import summarize

    rows = []
    for survey, paths in files.items():
        paths = list(paths)
        shreds = pd.concat([read_parquet(f) for f in paths if "/shreds/" in f],
                           ignore_index=True)
        cuts = pd.concat([read_parquet(f) for f in paths if "/cuts/" in f], ignore_index=True)
        rows.append(summarize(survey, shreds, cuts))
        log.info("%s", rows[-1])
    Path(json_path).write_text(json.dumps(rows, indent=1))
    table = pd.DataFrame(rows)
    html = ["<html><head><meta charset='utf-8'><title>Shred fractions</title></head><body>",
            "<h1>Shreds per survey (paper 001 Sec. 3.2: ~4% Legacy, ~5% SDSS / PS1)</h1>",
            f"<p>model: {model_kind}. Fraction = is_shred among sources that pass the cuts "
            "and have an ok cutout. Truth columns exist on the synthetic sky only: purity = "
            "true shreds among is_shred, completeness = is_shred among true shreds (both "
            "over scored sources).</p>",
            table.to_html(index=False, float_format="%.3f"), "</body></html>"]
    Path(html_path).write_text("\n".join(html))
    return rows
