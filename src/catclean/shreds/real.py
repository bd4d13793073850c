"""The shred CNN on the real sky: eye labels, one-number heuristics, fine-tuning and
calibration (issue 11, points 3-5).

Real labels
    ``data/real_labels/legacy_dr9_eye_labels.csv`` labels the 856 real Legacy DR9 viewer
    cutouts of ``../shared/real/legacy_dr9_grz_jpeg`` by eye (paper 001 Sec. 2.1; guide in
    ``data/real_labels/LABELLING.md``): ``galaxy``, ``shred``, ``star``, ``artefact`` or
    ``unsure``, and a fixed per-image ``split`` (``finetune`` / ``validation``). For the
    binary task shred = 1, galaxy / star / artefact = 0 ("not a shred"); ``unsure`` is
    left out. The validation split is never trained on.

Heuristics
    Every per-image statistic of :func:`catclean.shreds.realism.image_statistics` (the
    fraction of bright pixels, the offset of the brightest smoothed peak, the central
    surface brightness, colours, the radial profile, neighbour counts, ...) is a
    one-number shred classifier. Its direction is chosen on the fine-tuning split and its
    ROC AUC measured on the validation split (:func:`heuristic_aucs`), so that the CNN's
    margin over the best of them is an honest one.

Fine-tuning
    :func:`fine_tune` starts every fold from the pre-trained (synthetic-sky) weights and
    follows the paper's protocol (Sec. 2.2) on the fine-tuning labels: k-fold CV,
    RMSprop, random 90-degree rotations and flips, early stopping on the validation loss
    with patience 5, best weights restored. Only the learning rate is lower than the
    paper's 1e-3 (``learning_rate``, default 1e-4), as usual when the starting weights are
    already trained.

Calibration
    :func:`reliability` bins p_shred and compares the mean prediction with the observed
    shred fraction per bin (a reliability diagram, :func:`reliability_figure`), with the
    expected calibration error.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: the committed eye labels (repository data, not package data: the images are not ours)
LABELS_CSV = Path(__file__).resolve().parents[3] / "data" / "real_labels" / \
    "legacy_dr9_eye_labels.csv"
#: labels that mean "not a shred" in the binary task
NOT_SHRED = ("galaxy", "star", "artefact")


def read_eye_labels(csv=LABELS_CSV) -> pd.DataFrame:
    """The eye-label CSV as a table (``objID`` as text), every label checked.

    Raises
    ------
    FileNotFoundError
        Naming the missing CSV.
    ValueError
        Naming the CSV when it lacks the ``file`` or ``label`` column or holds a label
        other than ``shred``, ``unsure`` and :data:`NOT_SHRED`.
    """
    csv = Path(csv)
    if not csv.exists():
        raise FileNotFoundError(f"real label CSV not found: {csv}")
    labels = pd.read_csv(csv, dtype={"objID": str})
    if not {"file", "label"} <= set(labels.columns):
        raise ValueError(f"{csv}: needs columns file,label; has {list(labels.columns)}")
    unknown = set(labels["label"]) - set(NOT_SHRED) - {"shred", "unsure"}
    if unknown:
        raise ValueError(f"{csv}: unknown labels {sorted(unknown)}")
    return labels


def load_real_labels(image_dir, csv=LABELS_CSV, size: int = 128) -> pd.DataFrame:
    """The eye labels joined with their images.

    Parameters
    ----------
    image_dir : path-like
        Directory of the cutouts (``<objID>_grz.png``).
    csv : path-like
        The labels (``objID, file, label, split, note``).

    Returns
    -------
    pandas.DataFrame
        One row per labelled image that is not ``unsure``, in CSV order: the CSV columns,
        ``y`` (1 = shred) and ``image`` (uint8 (size, size, 3)) -- use :func:`stack`.

    Raises
    ------
    FileNotFoundError
        Naming the missing directory or CSV.
    ValueError
        From :func:`read_eye_labels`.
    """
    from .data import read_rgb_image

    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"real cutout directory not found: {image_dir}")
    labels = read_eye_labels(csv)
    labels = labels[labels["label"] != "unsure"].reset_index(drop=True)
    labels["y"] = (labels["label"] == "shred").astype(np.int8)
    labels["image"] = [read_rgb_image(image_dir / f, size) for f in labels["file"]]
    return labels


def eye_classes_of(image_dir, csv=LABELS_CSV) -> np.ndarray:
    """The eye class of every image of a cutout directory, in the order of
    :func:`catclean.shreds.realism.load_image_dir`: 1 shred, 0 not a shred
    (:data:`NOT_SHRED`), -1 ``unsure`` or not named by the CSV.

    Raises
    ------
    FileNotFoundError, ValueError
        From :func:`read_eye_labels`.
    """
    from .realism import image_files

    table = read_eye_labels(csv)
    label = dict(zip(table["file"], table["label"]))
    names = [label.get(f.name, "") for f in image_files(image_dir)]
    return np.array([1 if lab == "shred" else 0 if lab in NOT_SHRED else -1 for lab in names],
                    dtype=np.int8)


def stack(rows: pd.DataFrame) -> np.ndarray:
    """uint8 (N, H, W, 3) images of a :func:`load_real_labels` frame."""
    return np.stack(rows["image"].to_list()) if len(rows) else np.zeros((0, 128, 128, 3),
                                                                          np.uint8)


def heuristic_aucs(stats_fit: pd.DataFrame, y_fit, stats_eval: pd.DataFrame, y_eval
                   ) -> pd.DataFrame:
    """ROC AUC of every statistic used alone as a shred score.

    The direction (higher = shred, or lower = shred) is the one with AUC >= 0.5 on
    ``stats_fit`` / ``y_fit``; the AUC reported is on ``stats_eval`` / ``y_eval``.

    Returns
    -------
    pandas.DataFrame
        ``statistic, direction (+1 / -1), auc_fit, auc`` sorted by ``auc``, descending.
    """
    from sklearn.metrics import roc_auc_score

    rows = []
    for col in stats_fit.columns:
        a = stats_fit[col].to_numpy(float)
        b = stats_eval[col].to_numpy(float)
        if not (np.isfinite(a).all() and np.isfinite(b).all()) or np.ptp(a) == 0:
            continue
        auc_fit = roc_auc_score(y_fit, a)
        sign = 1 if auc_fit >= 0.5 else -1
        rows.append({"statistic": col, "direction": sign,
                     "auc_fit": max(auc_fit, 1 - auc_fit),
                     "auc": float(roc_auc_score(y_eval, sign * b))})
    return pd.DataFrame(rows).sort_values("auc", ascending=False, ignore_index=True)


def reliability(y, p, bins: int = 10) -> dict:
    """Reliability (calibration) table of probabilities ``p`` for outcomes ``y``.

    Returns
    -------
    dict
        ``bin_lo, bin_hi, n, mean_p, frac_pos`` per bin (equal-width in p; empty bins
        have NaN means) and ``ece``, the expected calibration error
        (count-weighted mean |frac_pos - mean_p|).
    """
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = np.linspace(0, 1, bins + 1)
    k = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    n = np.bincount(k, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(k, p, bins) / n
        frac = np.bincount(k, y, bins) / n
    ok = n > 0
    ece = float(np.sum(n[ok] * np.abs(frac[ok] - mean_p[ok])) / max(n.sum(), 1))
    return {"bin_lo": edges[:-1].tolist(), "bin_hi": edges[1:].tolist(), "n": n.tolist(),
            "mean_p": mean_p.tolist(), "frac_pos": frac.tolist(), "ece": ece}


def reliability_figure(curves: dict, path, title: str = "") -> None:
    """Reliability diagram: observed shred fraction against mean p_shred per bin, one
    line per entry of ``curves`` (name -> :func:`reliability` dict), with the counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, axn) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly calibrated")
    centres = None
    for name, r in curves.items():
        mp, fp, n = (np.asarray(r[k], float) for k in ("mean_p", "frac_pos", "n"))
        ok = n > 0
        ax.plot(mp[ok], fp[ok], "o-", label=f"{name} (ECE {r['ece']:.3f})")
        centres = (np.asarray(r["bin_lo"]) + np.asarray(r["bin_hi"])) / 2
        axn.step(centres, n, where="mid", label=name)
    ax.set_ylabel("observed shred fraction")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=9)
    axn.set_xlabel("p_shred")
    axn.set_ylabel("cutouts")
    axn.set_yscale("log")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dihedral_mean(predict, images: np.ndarray) -> np.ndarray:
    """Mean of ``predict`` over the 8 rotations and flips of the cutouts (the symmetry
    the network was trained with, paper 001 Sec. 2.2)."""
    out = []
    for flip in (False, True):
        x = images[:, :, ::-1] if flip else images
        for k in range(4):
            out.append(np.asarray(predict(np.ascontiguousarray(np.rot90(x, k, axes=(1, 2))))))
    return np.mean(out, axis=0)


def fine_tune(pretrained, images: np.ndarray, labels: np.ndarray, cfg, arch,
              model_path=None, fold_models_dir=None, rehearsal_set: dict | None = None,
              rehearsal_ratio: float = 1.0) -> dict:
    """Fine-tune a pre-trained shred CNN on real labelled cutouts (paper protocol).

    Parameters
    ----------
    pretrained : path-like or keras.Model
        The synthetic-sky model every fold starts from.
    images, labels : uint8 (N, 128, 128, 3), int (N,)
        The fine-tuning split (never the validation split).
    cfg : :class:`~catclean.shreds.train.TrainConfig`
        Protocol (folds, run_folds, test_fraction, patience, augmentation, precision,
        ``learning_rate`` of the fine-tuning).
    arch : :class:`~catclean.shreds.model.ShredArch`
        The pre-trained model's architecture.
    model_path : path-like, optional
        Where the kept model (the best fold or the folds' soup, ``cfg.keep``) is saved.
    fold_models_dir : path-like, optional
        Where every fold's model is saved (``fold<k>.keras``).
    rehearsal_set : dict, optional
        The pre-training set (``images, labels, groups`` as
        :func:`~catclean.shreds.stage.load_training_set` loads it, with the same seed and
        protocol as the pre-training). Its cross-validation part is rehearsed during
        fine-tuning (``rehearsal_ratio`` synthetic cutouts per real training cutout, see
        :func:`~catclean.shreds.train.cross_validate`); its held-out test part, never
        trained on in either step, scores the kept model: ``synthetic_test`` in the result.
    rehearsal_ratio : float
        Rehearsal cutouts per real training cutout.

    Returns
    -------
    dict
        As :func:`~catclean.shreds.train.cross_validate`, with ``pretrained`` and, with a
        rehearsal set, ``rehearsal`` (sizes, ratio) and ``synthetic_test`` (metrics of the
        kept model on the pre-training set's held-out test cutouts).
    """
    import keras

    from ..inference import load_keras
    from .train import binary_metrics, cross_validate, predict_proba, protocol_split

    if not isinstance(pretrained, keras.Model):
        pretrained = load_keras(pretrained)
    rehearsal, syn_test = None, None
    if rehearsal_set is not None:
        if model_path is None:
            raise ValueError("fine-tuning with rehearsal needs model_path (the kept model "
                             "is scored on the synthetic held-out test split)")
        rest, syn_test, _ = protocol_split(len(rehearsal_set["labels"]),
                                           rehearsal_set.get("groups"), cfg)
        rehearsal = (rehearsal_set["images"][rest], rehearsal_set["labels"][rest])
    res = cross_validate(images, labels, arch, cfg, groups=None, model_path=model_path,
                         init_weights=pretrained.get_weights(),
                         fold_models_dir=fold_models_dir, rehearsal=rehearsal,
                         rehearsal_ratio=rehearsal_ratio)
    res["pretrained"] = pretrained.name
    if rehearsal is not None:
        kept = load_keras(model_path)
        y_syn = np.asarray(rehearsal_set["labels"])[syn_test]
        res["rehearsal"] = {"ratio": float(rehearsal_ratio), "n_pool": int(len(rehearsal[1])),
                            "n_synthetic_test": int(len(syn_test))}
        res["synthetic_test"] = binary_metrics(
            y_syn, predict_proba(kept, rehearsal_set["images"][syn_test]))
        log.info("kept model on the synthetic held-out test (%d cutouts): AUC %.4f, "
                 "accuracy %.3f", len(syn_test), res["synthetic_test"]["auc"],
                 res["synthetic_test"]["accuracy"])
    return res


def interpolate(fine_tuned, refreshed, alphas, real_images: np.ndarray,
                real_labels: np.ndarray, synthetic_set: dict, cfg, model_path=None) -> dict:
    """Weight-space interpolation of two shred CNNs of one architecture (WiSE-FT, Wortsman
    et al. 2022), scored on two held-out tests; keeps the best mix.

    Every mix is ``alpha * fine_tuned + (1 - alpha) * refreshed``, weight by weight. The two
    networks must share a basin: ``refreshed`` is ``fine_tuned`` trained on for a few epochs
    on the synthetic sky (``catclean shreds train --init``), so the mix keeps the real-sky
    skill of the one and the synthetic-sky skill of the other.

    Each mix is scored on the real fine-tuning split's held-out test cutouts (the
    ``test_fraction`` that :func:`fine_tune` held out, by ``cfg``'s seed) and on the
    synthetic set's held-out test cutouts (those the pre-training and the refresh held
    out). The kept mix maximises the smaller of the two AUCs (the first given of equals).
    The real validation split chooses nothing.

    Parameters
    ----------
    fine_tuned, refreshed : path-like or keras.Model
    alphas : sequence of float
        Weights of ``fine_tuned``, each in [0, 1].
    real_images, real_labels : uint8 (N, 128, 128, 3), int (N,)
        The fine-tuning split (:func:`split_xy` "finetune").
    synthetic_set : dict
        ``images, labels, groups`` of the pre-training set
        (:func:`~catclean.shreds.stage.load_training_set`, the pre-training's seed).
    cfg : :class:`~catclean.shreds.train.TrainConfig`
        The protocol (seed, test_fraction) of the fine-tuning and the pre-training.
    model_path : path-like, optional
        Where the kept mix is saved.

    Returns
    -------
    dict
        ``mixes``: per alpha, ``real_test`` and ``synthetic_test`` metrics (no ROC arrays);
        ``kept_alpha``; ``n_real_test``, ``n_synthetic_test``; the two models' names.
    """
    import keras

    from ..inference import load_keras
    from .train import binary_metrics, predict_proba, protocol_split, without_roc

    alphas = [float(a) for a in alphas]
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise ValueError(f"interpolation alphas must lie in [0, 1], got {alphas}")
    nets = [m if isinstance(m, keras.Model) else load_keras(m) for m in (fine_tuned, refreshed)]
    w_ft, w_rf = nets[0].get_weights(), nets[1].get_weights()
    if [w.shape for w in w_ft] != [w.shape for w in w_rf]:
        raise ValueError("interpolated models differ in architecture: "
                         f"{nets[0].name} and {nets[1].name}")
    _, real_test, _ = protocol_split(len(real_labels), None, cfg)
    _, syn_test, _ = protocol_split(len(synthetic_set["labels"]), synthetic_set.get("groups"), cfg)
    x_syn = synthetic_set["images"][syn_test]
    y_syn = np.asarray(synthetic_set["labels"])[syn_test]
    mix = keras.models.clone_model(nets[1])  # the callers' models keep their weights

    def set_mix(a: float) -> None:
        mix.set_weights([a * u + (1.0 - a) * v for u, v in zip(w_ft, w_rf)])

    res = {"fine_tuned": nets[0].name, "refreshed": nets[1].name,
           "n_real_test": int(len(real_test)), "n_synthetic_test": int(len(syn_test)),
           "mixes": []}
    best, best_score = None, -np.inf
    for a in alphas:
        set_mix(a)
        scores = {"alpha": a}
        for name, x, y in (("real_test", real_images[real_test], real_labels[real_test]),
                           ("synthetic_test", x_syn, y_syn)):
            scores[name] = without_roc(binary_metrics(y, predict_proba(mix, x)))
        res["mixes"].append(scores)
        if scores["real_test"]["auc"] is None or scores["synthetic_test"]["auc"] is None:
            raise ValueError("an interpolation test split holds one class only: no AUC")
        low = min(scores["real_test"]["auc"], scores["synthetic_test"]["auc"])
        log.info("alpha %.2f: real test AUC %.4f, synthetic test AUC %.4f", a,
                 scores["real_test"]["auc"], scores["synthetic_test"]["auc"])
        if low > best_score:
            best, best_score = a, low
    res["kept_alpha"] = best
    if model_path is not None:
        set_mix(best)
        Path(model_path).parent.mkdir(parents=True, exist_ok=True)
        mix.save(model_path)
    return res


def split_xy(labels: pd.DataFrame, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and binary labels of one split (``finetune`` or ``validation``)."""
    part = labels[labels["split"] == split]
    if part.empty:
        raise ValueError(f"no real labels in split {split!r}")
    return stack(part), part["y"].to_numpy(int)


def evaluate_real(models: dict, image_dir, out_dir, csv=LABELS_CSV, threshold: float = 0.5,
                  batch_size: int = 64, tta: bool = True) -> dict:
    """Every model and every one-number heuristic on the real validation labels.

    Parameters
    ----------
    models : dict
        Name -> ``.keras`` shred model (e.g. ``synthetic only``, ``fine-tuned``,
        ``real labels only``).
    image_dir : path-like
        The real cutouts (``../shared/real/legacy_dr9_grz_jpeg``).
    out_dir : path-like
        Writes ``real_validation.json``, ``heuristics.csv``, ``p_shred_validation.csv``,
        ``reliability.png`` and ``examples_real.png`` (the first model's classes, errors
        framed in red).
    tta : bool
        Also score the mean over the 8 rotations / flips of each cutout.

    Returns
    -------
    dict
        Per model: AUC, accuracy, purity, completeness at ``threshold`` (and with
        ``_tta`` the same for the dihedral mean), the reliability table; the heuristics
        (best first) and the label counts.
    """
    from .plots import examples_figure
    from .realism import image_statistics
    from .score import ShredScorer
    from .train import binary_metrics, without_roc

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = load_real_labels(image_dir, csv)
    x_fit, y_fit = split_xy(labels, "finetune")
    x_val, y_val = split_xy(labels, "validation")
    heur = heuristic_aucs(image_statistics(x_fit), y_fit, image_statistics(x_val), y_val)
    heur.to_csv(out_dir / "heuristics.csv", index=False)
    res = {"n_validation": int(len(y_val)), "n_validation_shred": int(y_val.sum()),
           "n_finetune": int(len(y_fit)), "models": {},
           "heuristics": heur.round(4).to_dict("records")}
    table = pd.DataFrame({"file": labels.loc[labels["split"] == "validation", "file"]
                          .to_numpy(), "y": y_val})
    curves = {}
    for name, path in models.items():
        scorer = ShredScorer(path, kind="keras", batch_size=batch_size, precision="float32")
        p = scorer.predict(x_val)
        entry = without_roc(binary_metrics(y_val, p, threshold))
        entry["reliability"] = reliability(y_val, p)
        table[name] = p
        if tta:
            pt = dihedral_mean(scorer.predict, x_val)
            entry["tta"] = without_roc(binary_metrics(y_val, pt, threshold))
            table[name + " (8 rotations/flips)"] = pt
        res["models"][name] = {"path": str(path), **entry}
        curves[name] = entry["reliability"]
        log.info("%s: real validation AUC %.4f accuracy %.3f%s", name, entry["auc"],
                 entry["accuracy"], f"; 8-fold TTA AUC {entry['tta']['auc']:.4f}" if tta
                 else "")
        if len(curves) == 1:  # the first model's examples, errors framed in red
            examples_figure(x_val, p, y_val, out_dir / "examples_real.png", seed=0)
    table.to_csv(out_dir / "p_shred_validation.csv", index=False)
    if curves:
        reliability_figure(curves, out_dir / "reliability.png",
                           f"real validation labels ({len(y_val)} cutouts, "
                           f"{int(y_val.sum())} shreds)")
    (out_dir / "real_validation.json").write_text(json.dumps(res, indent=1))
    return res
