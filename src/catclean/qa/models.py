"""The three deep models of paper 000 (Sec. 3.3, Fig. 9), Keras 3 on TensorFlow.

* M1: the representative image (Input-1: n_clusters stamps of 25x25) through a CNN
  (paper: five convolutional layers), flattened, a fully connected layer, softmax over
  the five classes.
* M2: the per-cluster counts (Input-2) through fully connected layers only.
* M3: the CNN output of M1 concatenated with Input-2, then fully connected layers.

The CNN is applied to each stamp with shared weights (``TimeDistributed``) and the
per-stamp embeddings are concatenated in cluster order: the stamp of cluster k always
sits at position k, as in the paper's representative image. All kernels carry an L2
weight decay (Sec. 3.3). ReLU everywhere, softmax output, Adam, early stopping on the
validation loss.

Per-CCD probabilities are combined into per-exposure probabilities by
:func:`combine_ccds`. The baseline rule is the mean of the log-probabilities over the
live CCDs, renormalised with a softmax (a product-of-experts, i.e. CCDs treated as
independent evidence, tempered by the number of CCDs). It dilutes a defect that shows
on only a few CCDs (a scattered-light ring, a corner glow): the trained rule
(:func:`fit_combiner`) adds, per class, the arithmetic-mean (mixture) and the maximum
single-CCD evidence, with weights and biases fitted on the *validation* exposures
(never the test ones) and shrunk towards the baseline rule; the shrinkage strength is
chosen by cross-validation on the validation exposures, and an infinite strength (the
baseline rule itself) is one of the candidates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import CLASSES


@dataclass
class ModelConfig:
    """Architecture and training parameters (keys of ``qa.models``).

    ``conv_filters``/``pool_after`` define the per-stamp CNN; the paper-size preset uses
    five conv layers (32, 32, 64, 64, 128) and a 256-unit dense layer.
    """

    conv_filters: list = field(default_factory=lambda: [8, 16, 16])
    pool_after: list = field(default_factory=lambda: [0, 1])
    stamp_embedding: int = 16
    dense_units: int = 64
    m2_units: list = field(default_factory=lambda: [64, 32])
    l2: float = 1e-4
    dropout: float = 0.2
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 60
    patience: int = 10
    val_fraction: float = 0.3
    augment: bool = True
    # training target of a CCD: 'exposure' (its exposure's class, as in the paper) or
    # 'truth' (the simulator's per-CCD truth where it has one: a CCD of a BGP exposure that
    # the background pattern does not reach, amplitude < bgp_min_amplitude of the sky, is
    # trained as Good). Exposure grades and all accuracies use the exposure's class.
    ccd_labels: str = "truth"
    bgp_min_amplitude: float = 0.02

    @classmethod
    def from_dict(cls, d: dict | None) -> ModelConfig:
        d = dict(d or {})
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def setup_tf(threads: int = 2, seed: int = 0):
    """Limit TensorFlow to ``threads`` CPU threads and seed Python, NumPy and TF."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(min(2, int(threads)))
    except RuntimeError:  # already initialised in this process
        pass
    keras.utils.set_random_seed(int(seed))
    return keras


def build_model(kind: str, n_clusters: int = 20, stamp: int = 25,
                cfg: ModelConfig | None = None):
    """Build and compile M1, M2 or M3 (see module docstring)."""
    import keras
    from keras import layers

    cfg = cfg or ModelConfig()
    reg = keras.regularizers.L2(cfg.l2)
    n_out = len(CLASSES)
    inputs, parts = [], []
    if kind in ("M1", "M3"):
        inp1 = keras.Input((n_clusters, stamp, stamp, 1), name="input1")
        inputs.append(inp1)
        x = inp1
        for i, f in enumerate(cfg.conv_filters):
            x = layers.TimeDistributed(layers.Conv2D(f, 3, padding="same", activation="relu",
                                                     kernel_regularizer=reg), name=f"conv{i}")(x)
            if i in cfg.pool_after:
                x = layers.TimeDistributed(layers.MaxPooling2D(2), name=f"pool{i}")(x)
        x = layers.TimeDistributed(layers.Flatten(), name="flat_stamp")(x)
        x = layers.TimeDistributed(layers.Dense(cfg.stamp_embedding, activation="relu",
                                                kernel_regularizer=reg), name="stamp_emb")(x)
        x = layers.Flatten(name="flat")(x)
        parts.append(x)
    if kind in ("M2", "M3"):
        inp2 = keras.Input((2 * n_clusters,), name="input2")
        inputs.append(inp2)
        if kind == "M3":
            # the counts get their own small dense layer before the merge so that the
            # 20 numbers are not drowned by the CNN's n_clusters x embedding features
            parts.append(layers.Dense(cfg.m2_units[-1], activation="relu",
                                      kernel_regularizer=reg, name="counts_dense")(inp2))
        else:
            parts.append(inp2)
    if not inputs:
        raise ValueError(f"unknown model {kind!r}; expected M1, M2 or M3")
    x = parts[0] if len(parts) == 1 else layers.Concatenate(name="merge")(parts)
    units = cfg.m2_units if kind == "M2" else [cfg.dense_units]
    for j, u in enumerate(units):
        x = layers.Dense(u, activation="relu", kernel_regularizer=reg, name=f"dense{j}")(x)
        if cfg.dropout > 0:
            x = layers.Dropout(cfg.dropout, name=f"drop{j}")(x)
    out = layers.Dense(n_out, activation="softmax", kernel_regularizer=reg, name="probs")(x)
    model = keras.Model(inputs, out, name=kind)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def model_inputs(kind: str, stamps: np.ndarray, in2: np.ndarray):
    """The input list a model of ``kind`` expects."""
    if kind == "M1":
        return [stamps[..., None]]
    if kind == "M2":
        return [in2]
    return [stamps[..., None], in2]


def train_model(kind: str, stamps, in2, y, groups, cfg: ModelConfig, seed: int,
                n_clusters: int = 20, stamp: int = 25, log=None, is_val=None):
    """Train one model on per-CCD samples with a 70/30 train/validation split by exposure.

    Parameters
    ----------
    stamps : (n, n_clusters, stamp, stamp) float32
    in2 : (n, 2 n_clusters) float32
    y : (n,) int class index
    groups : (n,) exposure id of each CCD; the split keeps all CCDs of an exposure together.
    is_val : (n,) bool, optional
        Validation mask; default :func:`validation_groups` of ``groups`` within each class
        of ``y`` (pass the caller's mask when ``y`` holds per-CCD targets that differ from
        the exposure class, or when the caller needs the same split).

    Returns
    -------
    model, history dict
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    if is_val is None:
        is_val = validation_groups(groups, cfg.val_fraction, seed, labels=y)
    model = build_model(kind, n_clusters, stamp, cfg)
    ytr = y[~is_val]
    if kind != "M2" and cfg.augment:
        # mirror images of every training CCD (all its stamps flipped together): a trail or
        # gradient direction is not a class property, its presence is
        st_tr = stamps[~is_val]
        st_tr = np.concatenate([st_tr, st_tr[:, :, :, ::-1], st_tr[:, :, ::-1, :]])
        tr = model_inputs(kind, st_tr, np.concatenate([in2[~is_val]] * 3))
        ytr = np.concatenate([ytr] * 3)
    else:
        tr = model_inputs(kind, stamps[~is_val], in2[~is_val])
    va = model_inputs(kind, stamps[is_val], in2[is_val])
    cb = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                        restore_best_weights=True)]
    hist = model.fit(tr, ytr, validation_data=(va, y[is_val]), epochs=cfg.epochs,
                     batch_size=cfg.batch_size, shuffle=True, verbose=0, callbacks=cb)
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    if log:
        log(f"{kind}: {len(h['loss'])} epochs, best val_accuracy "
            f"{max(h.get('val_accuracy', [float('nan')])):.3f}, params {model.count_params()}")
    return model, h


def predict(model, kind: str, stamps, in2, batch_size: int = 256) -> np.ndarray:
    """(n, 5) class probabilities per CCD."""
    if len(in2) == 0:
        return np.zeros((0, len(CLASSES)), np.float32)
    return np.asarray(model.predict(model_inputs(kind, stamps, in2), batch_size=batch_size,
                                    verbose=0), np.float64)


COMBINER_FEATURES = ("mean_log_p", "log_mean_p", "max_log_p")


def ccd_evidence(p_ccd: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Per-class exposure-level evidence from per-CCD probabilities, shape (3, n_classes):
    mean over CCDs of log p (product of experts), log of the mean p (mixture of experts)
    and the maximum over CCDs of log p (strongest single CCD)."""
    lp = np.log(np.clip(np.asarray(p_ccd, np.float64), eps, 1.0))
    return np.stack([lp.mean(0), np.log(np.exp(lp).mean(0)), lp.max(0)])


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _combiner_logits(theta, X):
    """X: (n, 3, C); theta: (4, C) = weights of the 3 evidence terms + bias per class."""
    return (X * theta[None, :3, :]).sum(1) + theta[3][None, :]


def _theta0(n_classes):
    t = np.zeros((4, n_classes))
    t[0] = 1.0  # baseline: softmax(mean log p)
    return t


def _fit_theta(X, y, lam):
    from scipy.optimize import minimize

    n, _, C = X.shape
    t0 = _theta0(C)
    Y = np.eye(C)[y]

    def f(v):
        t = v.reshape(4, C)
        z = _combiner_logits(t, X)
        z = z - z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1))
        nll = float((lse - (z * Y).sum(1)).mean())
        P = np.exp(z - lse[:, None])
        G = (P - Y) / n                               # d nll / d logits
        g = np.concatenate([(X * G[:, None, :]).sum(0), G.sum(0)[None]])
        d = t - t0
        return nll + lam * float((d ** 2).sum()), (g + 2 * lam * d).ravel()

    r = minimize(f, t0.ravel(), jac=True, method="L-BFGS-B")
    return r.x.reshape(4, C)


def fit_combiner(p_list: list, y: np.ndarray, seed: int = 0,
                 lambdas=(0.003, 0.03, 0.3, 3.0), n_folds: int = 5) -> dict:
    """Fit the per-exposure combination rule on held-out (validation) exposures.

    Parameters
    ----------
    p_list : list of (n_ccd_i, n_classes) per-CCD probabilities, one entry per exposure
        (exposures the model was not fitted on).
    y : (n_exposures,) true class index.
    lambdas : L2 strengths of the shrinkage towards the baseline rule; the baseline
        (infinite strength) is always a candidate. The candidate with the lowest
        cross-validated log-loss (``n_folds`` folds, stratified by class) is refitted
        on all exposures.

    Returns
    -------
    dict (JSON-serialisable): ``rule`` ('trained' or 'mean_log'), ``theta`` (4 x n_classes:
    weights of mean log p, log mean p, max log p, and the bias), ``lambda``, ``cv_logloss``
    per candidate and ``n_exposures``.
    """
    y = np.asarray(y, int)
    C = len(CLASSES)
    X = np.stack([ccd_evidence(p) for p in p_list]) if len(p_list) else np.zeros((0, 3, C))
    base = {"rule": "mean_log", "theta": _theta0(C).tolist(), "lambda": None,
            "features": list(COMBINER_FEATURES), "n_exposures": int(len(y))}
    counts = np.bincount(y, minlength=C) if len(y) else np.zeros(C, int)
    k = int(min(n_folds, counts.min()))
    if k < 2:
        base["cv_logloss"] = {}
        base["note"] = "too few validation exposures per class to fit a combiner"
        return base
    rng = np.random.default_rng([int(seed), 59])
    fold = np.empty(len(y), int)
    for c in range(C):
        idx = np.flatnonzero(y == c)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k

    def loss(theta, sel):
        P = _softmax(_combiner_logits(theta, X[sel]))
        return float(-np.log(np.clip(P[np.arange(sel.sum()), y[sel]], 1e-12, 1)).mean())

    cv = {"inf": float(np.mean([loss(_theta0(C), fold == f) for f in range(k)]))}
    for lam in lambdas:
        cv[str(lam)] = float(np.mean([loss(_fit_theta(X[fold != f], y[fold != f], lam),
                                           fold == f) for f in range(k)]))
    best = min(cv, key=cv.get)
    base["cv_logloss"] = cv
    if best == "inf":
        return base
    base.update(rule="trained", theta=_fit_theta(X, y, float(best)).tolist(),
                **{"lambda": float(best)})
    return base


def combine_ccds(p_ccd: np.ndarray, combiner: dict | None = None,
                 eps: float = 1e-6) -> np.ndarray:
    """Per-exposure probabilities from the per-CCD ones of the usable CCDs.

    Without ``combiner`` (or with its ``rule`` 'mean_log'): softmax(mean_k log p_k).
    With a trained combiner (:func:`fit_combiner`): softmax over classes c of
    a_c mean_k log p_kc + b_c log mean_k p_kc + g_c max_k log p_kc + bias_c.
    """
    p_ccd = np.asarray(p_ccd, np.float64)
    if len(p_ccd) == 0:
        return np.full(len(CLASSES), np.nan)
    theta = np.asarray(combiner["theta"]) if combiner else _theta0(p_ccd.shape[1])
    return _softmax(_combiner_logits(theta, ccd_evidence(p_ccd, eps)[None]))[0]


def load_combiner(metrics_path, kind: str) -> dict | None:
    """The per-exposure combination rule stored for model ``kind`` in ``metrics/models.json``
    (None: the file has none, i.e. softmax of the mean log p)."""
    import json

    return json.loads(Path(metrics_path).read_text())[kind].get("combiner")


def validation_groups(groups, val_fraction: float, seed: int, labels=None) -> np.ndarray:
    """Boolean mask of the samples whose exposure (group) is in the validation part:
    ``val_fraction`` of the exposures (paper Sec. 4: 70/30), drawn with the seed;
    with ``labels`` (the class of each sample) the fraction is drawn within each class,
    so that every class has validation exposures (needed to fit the combination rule)."""
    rng = np.random.default_rng([int(seed), 23])
    groups = np.asarray(groups)
    if labels is None:
        parts = [np.unique(groups)]
    else:
        labels = np.asarray(labels)
        parts = [np.unique(groups[labels == c]) for c in np.unique(labels)]
    val = set()
    for uniq in parts:
        val |= set(rng.choice(uniq, size=max(1, int(round(val_fraction * len(uniq)))),
                              replace=False).tolist())
    return np.array([g in val for g in groups])


def load_model(path):
    """Load a ``.keras`` model in safe mode."""
    import keras

    return keras.models.load_model(path, safe_mode=True, compile=False)
