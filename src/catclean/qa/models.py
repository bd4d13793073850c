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
:mod:`.combiner`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import CLASSES


@dataclass
class ModelConfig:
    """Architecture and training parameters: the keys of a preset's ``models`` section
    (``workflow/schemas/qa.schema.yaml``, where every default and meaning is).

    ``conv_filters``/``pool_after`` define the per-stamp CNN. ``ccd_labels`` is the
    training target of a CCD: 'exposure' (its exposure's class, as in the paper) or
    'truth' (the simulator's per-CCD truth where it has one: a CCD of a BGP exposure that
    the background pattern does not reach, amplitude < ``bgp_min_amplitude`` of the sky,
    is trained as Good). Exposure grades and all accuracies use the exposure's class.
    """

    conv_filters: list
    pool_after: list
    stamp_embedding: int
    dense_units: int
    m2_units: list
    l2: float
    dropout: float
    learning_rate: float
    batch_size: int
    epochs: int
    patience: int
    val_fraction: float
    augment: bool
    ccd_labels: str
    bgp_min_amplitude: float

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """From a complete ``models`` section (unknown keys are an error of the schema)."""
        from ..config import settings_from

        return settings_from(cls, d)


def build_model(kind: str, n_clusters: int, stamp: int, cfg: ModelConfig):
    """Build and compile M1, M2 or M3 (see module docstring)."""
    import keras
    from keras import layers

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
                n_clusters: int, stamp: int, log=None, is_val=None):
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
    """(n, 5) class probabilities per CCD; ``model`` is a Keras model or a
    :class:`catclean.inference.Predictor` (compiled, in its precision)."""
    from catclean.inference import Predictor

    if len(in2) == 0:
        return np.zeros((0, len(CLASSES)), np.float32)
    if isinstance(model, Predictor):
        return np.asarray(model(model_inputs(kind, np.asarray(stamps, np.float32),
                                             np.asarray(in2, np.float32))), np.float64)
    return np.asarray(model.predict(model_inputs(kind, stamps, in2), batch_size=batch_size,
                                    verbose=0), np.float64)


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
