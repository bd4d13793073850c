"""Training and cross-validation of the shred CNN (paper 001 Sec. 2.2).

Protocol (Sec. 2.2): 20% of the labeled cutouts are held out for testing; the other
80% go through k-fold cross-validation (k = 5 in the paper), each fold training on 80%
and validating on 20% of them. Training uses RMSprop (learning rate 1e-3), categorical
cross-entropy on the 2-class softmax, random rotations / flips of the training images
(augmentation), at most 100 epochs with early stopping when the validation loss has not
decreased for 5 epochs (best weights restored). Every fold model is evaluated on the
held-out test set (ROC per fold + mean, accuracy at p >= 0.5, confusion matrix); the
fold with the lowest validation loss is kept as *the* model for scoring (or, with
``keep: soup``, one network with the mean of the folds' weights).

Splits can be grouped (e.g. by host) so cutouts of one field never sit on both sides.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .model import ShredArch, build_shred_cnn

log = logging.getLogger(__name__)


# Keras dtype policies accepted for training (TrainConfig.precision)
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# how cross_validate picks the scoring model (TrainConfig.keep)
KEEP = ("best_fold", "soup")


@dataclass
class TrainConfig:
    """Training hyper-parameters of one ``shreds.presets`` entry (paper 001 Sec. 2.2).

    No field has a default here: the values come from the schema's presets
    (:meth:`from_config`, or :meth:`from_preset` outside the workflow).
    """

    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    folds: int
    run_folds: int | None  # train only the first n folds (time budget); None = all
    test_fraction: float
    rotate90: bool
    flip: bool
    rotate_any: bool  # arbitrary-angle rotations (reflect fill) on top of 90 deg
    threads: int  # the job's threads: recorded in cv.json (catclean.runtime sets them)
    seed: int
    max_seconds: float | None  # wall-clock cap per fold (best weights kept)
    clipnorm: float | None  # RMSprop gradient-norm clip (None: the paper's, no clipping)
    # the scoring model: "best_fold" (lowest validation loss, the paper) or "soup" (the
    # mean of the folds' weights: folds fine-tuned from one pre-trained model share a basin)
    keep: str
    # Keras dtype policy: 'float32', or 'mixed_bfloat16' (bf16 convolutions, float32
    # weights and softmax): ~3x faster on CPUs with AVX512-BF16/AMX and on GPUs
    precision: str

    def __post_init__(self):
        # the two choices the schema's enums check in a run, checked here for every caller
        for name, allowed in (("precision", PRECISIONS), ("keep", KEEP)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"shreds training {name} {getattr(self, name)!r}: expected "
                                 f"one of {', '.join(allowed)}")

    @classmethod
    def from_config(cls, cfg: dict, seed: int, threads: int) -> TrainConfig:
        """From a complete preset of ``shreds.presets`` (every key filled by the schema)."""
        from ..config import settings_from

        return settings_from(cls, cfg, seed=int(seed), threads=int(threads))

    @classmethod
    def from_preset(cls, name: str | None = None, seed: int = 0, threads: int = 1,
                    **overrides) -> TrainConfig:
        """A schema preset (:func:`catclean.config.schema_preset`) with ``overrides``."""
        from ..config import schema_preset

        return cls.from_config({**schema_preset("shreds", name), **overrides}, seed, threads)


def group_split(n: int, groups: np.ndarray | None, fraction: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, held_out)`` with about ``fraction`` of the rows held out, whole
    groups at a time when ``groups`` is given."""
    if groups is None:
        perm = rng.permutation(n)
        k = int(round(fraction * n))
        return np.sort(perm[k:]), np.sort(perm[:k])
    ug = rng.permutation(np.unique(groups))
    sizes = np.array([(groups == g).sum() for g in ug])
    take = ug[np.cumsum(sizes) <= max(1, fraction * n)]
    if len(take) == 0:
        take = ug[:1]
    held = np.isin(groups, take)
    return np.flatnonzero(~held), np.flatnonzero(held)


def kfold(idx: np.ndarray, groups: np.ndarray | None, k: int, rng: np.random.Generator
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, val) index pairs over ``idx`` (grouped when ``groups`` given)."""
    if groups is None:
        parts = np.array_split(rng.permutation(idx), k)
    else:
        g = groups[idx]
        ug = rng.permutation(np.unique(g))
        gparts = np.array_split(ug, k)
        parts = [idx[np.isin(g, gp)] for gp in gparts]
    out = []
    for i in range(k):
        val = np.sort(parts[i])
        train = np.sort(np.concatenate([parts[j] for j in range(k) if j != i]))
        out.append((train, val))
    return out


def protocol_split(n: int, groups: np.ndarray | None, cfg: TrainConfig
                   ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The protocol's splits of ``n`` cutouts: ``(rest, test, folds)``.

    ``test`` is the held-out ``cfg.test_fraction`` (whole groups), ``folds`` the
    ``cfg.folds`` (train, validation) pairs over ``rest``. Seeded by ``cfg.seed`` alone, so
    a later step (fine-tuning with rehearsal) finds the same held-out test cutouts of a
    pre-training set and never trains on them.
    """
    rng = np.random.default_rng([cfg.seed, 11])
    rest, test = group_split(n, groups, cfg.test_fraction, rng)
    return rest, test, kfold(rest, groups, cfg.folds, rng)


def _dataset(images, onehot, batch, cfg: TrainConfig, augment: bool, seed: int):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, onehot))
    if augment:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)

    def prep(x, y):
        x = tf.cast(x, tf.float32) / 255.0
        if augment:
            if cfg.rotate90:
                x = tf.image.rot90(x, tf.random.uniform([], 0, 4, dtype=tf.int32))
            if cfg.flip:
                x = tf.image.random_flip_left_right(x)
                x = tf.image.random_flip_up_down(x)
        return x, y

    ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch)
    if augment and cfg.rotate_any:
        import keras

        rot = keras.layers.RandomRotation(0.5, fill_mode="reflect", seed=seed)
        ds = ds.map(lambda x, y: (rot(x, training=True), y))
    return ds.prefetch(2)


def predict_proba(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """p(shred) = softmax class 1, for uint8 RGB cutouts (batched, /255 inside)."""
    if len(images) == 0:
        return np.zeros(0)
    out = []
    for s in range(0, len(images), 4096):
        x = np.asarray(images[s:s + 4096], dtype=np.float32) / 255.0
        out.append(np.asarray(model.predict(x, batch_size=batch_size, verbose=0)))
    p = np.concatenate(out)
    return p[:, 1].astype(np.float64) if p.ndim == 2 and p.shape[1] == 2 else p.ravel()


def without_roc(metrics: dict) -> dict:
    """:func:`binary_metrics` without its ROC points (for summaries and JSON tables)."""
    return {k: v for k, v in metrics.items() if k not in ("roc_fpr", "roc_tpr")}


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict:
    """AUC, ROC points, accuracy at ``p >= threshold``, confusion matrix, purity and
    completeness of the shred class."""
    from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

    y = np.asarray(y).astype(int)
    pred = (np.asarray(p) >= threshold).astype(int)
    out = {"n": int(len(y)), "n_shred": int(y.sum())}
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        out["auc"] = float(roc_auc_score(y, p))
        out["roc_fpr"] = fpr.round(5).tolist()
        out["roc_tpr"] = tpr.round(5).tolist()
    else:
        out["auc"] = None
    cm = confusion_matrix(y, pred, labels=[0, 1])
    tn, fp, fn, tp = (int(v) for v in cm.ravel())
    out.update(accuracy=float((tp + tn) / max(len(y), 1)),
               confusion_matrix={"tn": tn, "fp": fp, "fn": fn, "tp": tp},
               purity=float(tp / (tp + fp)) if tp + fp else None,
               completeness=float(tp / (tp + fn)) if tp + fn else None)
    return out


def train_fold(arch: ShredArch, cfg: TrainConfig, x_train, y_train, x_val, y_val,
               fold_seed: int, log_every=None, init_weights=None):
    """Train one model; returns ``(model, history dict)``. ``init_weights`` (a list
    as from ``model.get_weights()``) starts it from a trained model (fine-tuning)."""
    import keras

    keras.utils.set_random_seed(fold_seed)
    keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        model = build_shred_cnn(arch)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if init_weights is not None:
        model.set_weights(init_weights)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=cfg.learning_rate,
                                                     clipnorm=cfg.clipnorm),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    eye = np.eye(2, dtype=np.float32)
    tr = _dataset(x_train, eye[y_train], cfg.batch_size, cfg, True, fold_seed)
    va = _dataset(x_val, eye[y_val], cfg.batch_size, cfg, False, fold_seed)
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                               restore_best_weights=True)]
    if log_every is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=log_every))
    timed_out = []
    if cfg.max_seconds:
        t0 = time.time()

        def _cap(epoch, logs):
            if time.time() - t0 > cfg.max_seconds:
                model.stop_training = True
                timed_out.append(epoch)

        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=_cap))
    hist = model.fit(tr, validation_data=va, epochs=cfg.max_epochs, callbacks=callbacks,
                     verbose=0)
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    h["stopped_by_time_cap"] = bool(timed_out)
    return model, h


def cross_validate(images: np.ndarray, labels: np.ndarray, arch: ShredArch,
                   cfg: TrainConfig, groups: np.ndarray | None = None,
                   model_path=None, init_weights=None, fold_models_dir=None,
                   rehearsal: tuple[np.ndarray, np.ndarray] | None = None,
                   rehearsal_ratio: float = 1.0) -> dict:
    """Held-out test split + k-fold CV (paper 001 Sec. 2.2); see module docstring.

    Parameters
    ----------
    images : uint8 (N, H, W, 3)
    labels : int (N,), 1 = shred
    groups : array (N,), optional
        Group ids (e.g. host NSAID) kept together in splits.
    model_path : path-like, optional
        Where the kept (lowest validation loss) model is saved (``.keras``).
    init_weights : list of arrays, optional
        Start every fold from these weights (fine-tuning a pre-trained model).
    fold_models_dir : path-like, optional
        Save every fold's model there too (``fold<k>.keras``): their spread is
        ``p_shred_std`` when the catalog is scored.
    rehearsal : (uint8 images, int labels), optional
        Cutouts of the pre-training set (never its held-out test part) mixed into every
        fold's *training* part when fine-tuning: ``rehearsal_ratio`` of them per training
        cutout, a fresh seeded draw per fold. Rehearsal keeps what the pre-training
        taught (the synthetic sky) while the network adapts to the new labels;
        validation, early stopping and the test split stay on ``images`` alone.
    rehearsal_ratio : float
        Rehearsal cutouts per training cutout of the fold.

    Returns
    -------
    dict
        ``folds`` (history, val loss, test metrics per fold), ``mean`` test metrics,
        ``kept_fold`` (lowest validation loss), ``kept_model`` ("fold k" or "soup of n
        folds"), ``kept`` and ``test`` (indices, labels, p_shred of the kept model),
        ``config`` ...
    """
    labels = np.asarray(labels).astype(int)
    rest, test, folds = protocol_split(len(labels), groups, cfg)
    n_run = cfg.run_folds or cfg.folds
    res = {"config": asdict(cfg), "arch": arch.to_dict(), "n_total": int(len(labels)),
           "n_test": int(len(test)), "n_cv": int(len(rest)), "folds": []}
    best, best_loss, best_p = None, np.inf, None
    weight_sum = None  # for keep: soup
    x_test = images[test]
    for k, (tr, va) in enumerate(folds[:n_run]):
        t0 = time.time()

        def _log(epoch, logs, k=k, t0=t0):
            log.info("fold %d epoch %d: loss %.4f val_loss %.4f val_acc %.3f (%.0f s)", k,
                     epoch, logs.get("loss", np.nan), logs.get("val_loss", np.nan),
                     logs.get("val_accuracy", np.nan), time.time() - t0)

        x_tr, y_tr = images[tr], labels[tr]
        if rehearsal is not None:
            x_tr, y_tr = _with_rehearsal(x_tr, y_tr, rehearsal, rehearsal_ratio,
                                         np.random.default_rng([cfg.seed, 12, k]))
        model, hist = train_fold(arch, cfg, x_tr, y_tr, images[va], labels[va],
                                 fold_seed=cfg.seed * 100 + k, log_every=_log,
                                 init_weights=init_weights)
        if fold_models_dir is not None:
            Path(fold_models_dir).mkdir(parents=True, exist_ok=True)
            model.save(Path(fold_models_dir) / f"fold{k}.keras")
        p = predict_proba(model, x_test)
        m = binary_metrics(labels[test], p)
        vloss = float(np.min(hist["val_loss"]))
        res["folds"].append({"fold": k, "n_train": int(len(tr)), "n_val": int(len(va)),
                             "n_rehearsal": int(len(y_tr) - len(tr)),
                             "epochs": len(hist["loss"]), "best_val_loss": vloss,
                             "best_epoch": int(np.argmin(hist["val_loss"])) + 1,
                             "stopped_by_time_cap": hist.pop("stopped_by_time_cap"),
                             "train_seconds": round(time.time() - t0, 1),
                             "history": hist, "test": m})
        log.info("fold %d: %d epochs, val_loss %.4f, test AUC %s acc %.3f", k,
                 len(hist["loss"]), vloss, m["auc"], m["accuracy"])
        if vloss < best_loss:
            best, best_loss, best_p = model, vloss, p
        if cfg.keep == "soup":
            w = [np.asarray(v, dtype=np.float64) for v in model.get_weights()]
            weight_sum = w if weight_sum is None else [a + b for a, b in zip(weight_sum, w)]
    aucs = [f["test"]["auc"] for f in res["folds"] if f["test"]["auc"] is not None]
    accs = [f["test"]["accuracy"] for f in res["folds"]]
    res["mean"] = {"auc": float(np.mean(aucs)) if aucs else None,
                   "auc_std": float(np.std(aucs)) if aucs else None,
                   "accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs))}
    kept = int(np.argmin([f["best_val_loss"] for f in res["folds"]]))
    res["kept_fold"] = kept
    res["kept_model"] = f"fold {kept}"
    if cfg.keep == "soup" and len(res["folds"]) > 1:
        # model soup (Wortsman et al. 2022, uniform): one network whose weights are the
        # folds' mean; chosen by no validation set
        n = len(res["folds"])
        model.set_weights([(a / n).astype(np.float32) for a in weight_sum])
        best, best_p = model, predict_proba(model, x_test)
        res["kept_model"] = f"soup of {n} folds"
        log.info("soup of %d folds: test AUC %s", n, binary_metrics(labels[test], best_p)["auc"])
    res["kept"] = binary_metrics(labels[test], best_p)
    res["test"] = {"index": test.tolist(), "label": labels[test].tolist(),
                   "p_shred": np.round(best_p, 6).tolist()}
    if model_path is not None:
        Path(model_path).parent.mkdir(parents=True, exist_ok=True)
        best.save(model_path)
    return res


def _with_rehearsal(x, y, rehearsal, ratio: float, rng: np.random.Generator):
    """``(x, y)`` plus a draw of ``ratio * len(y)`` rehearsal cutouts (without
    replacement while the pool lasts)."""
    rx, ry = rehearsal
    n = min(int(round(ratio * len(y))), len(ry))
    pick = np.sort(rng.choice(len(ry), size=n, replace=False))
    return np.concatenate([x, rx[pick]]), np.concatenate([y, np.asarray(ry)[pick]])


def save_json(obj, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=1))
