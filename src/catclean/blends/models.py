"""Keras 3 networks of paper 002: blend2flux (Sec. 3.1), U-Net and blend2mask2flux (Sec. 3.2).

All models take raw blend stamps in nanomaggies per pixel, shape ``(N, N, 1)``, and return
fluxes in nanomaggies. The scaling lives *inside* the model (:class:`StampNorm` divides by
the stamp's total flux, :class:`FluxRescale` multiplies the predicted flux fractions back),
so catalog cutouts are scaled exactly like the training stamps and the saved ``.keras``
file is self-contained (custom layers are registered, so ``safe_mode=True`` loading works).

blend2flux (Fig. 3, Table 2)
    five 3x3 ReLU convolutions with ``F, F, 2F, 2F, 4F`` filters ("starts with F and doubles
    every other layer"), each followed by 2x2 max-pooling, then three dense layers
    ``4F -> max(F/4, 8) -> 2``. At 128x128 input this gives 1.6 M (F=64), 25.7 M (F=256)
    and 102.7 M (F=512) parameters, the numbers of Table 2. Loss: MAPE; optimiser: Adam.
U-Net (Fig. 4)
    ``depth`` levels of two 3x3 ReLU convolutions (``F * 2**level`` filters), max-pooling
    down and 2x2 transposed convolutions up with skip concatenation; a 1x1 sigmoid
    convolution gives the two masks (central, companion); binary cross-entropy. The
    paper's fiducial model has depth 5 and F = 32.
blend2mask2flux
    the U-Net's masks concatenated with the (normalised) blend give a 3-channel input to
    a blend2flux-like flux network; the U-Net is pretrained alone, then the whole model
    is trained end to end on MAPE with the segmentation loss weighted 0.1 (Sec. 3.2).
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

NORM_GAIN = 100.0  # normalised stamp = pixels / total flux * NORM_GAIN (peaks of order 1)
NORM_FLOOR = 1e-3  # nanomaggies: floor on the stamp total (empty stamps are flagged upstream)


@keras.saving.register_keras_serializable(package="catclean")
class StampNorm(layers.Layer):
    """Divide a stamp by its total flux: returns ``(normalised stamp, total)``.

    Input ``(B, N, N, C)`` in nanomaggies; the total is the sum over the first channel,
    floored at ``floor`` (nanomaggies).
    """

    def __init__(self, gain: float = NORM_GAIN, floor: float = NORM_FLOOR, **kwargs):
        super().__init__(**kwargs)
        self.gain = float(gain)
        self.floor = float(floor)

    def call(self, x):
        total = ops.maximum(ops.sum(x[..., 0], axis=(1, 2)), self.floor)
        return x / total[:, None, None, None] * self.gain, total[:, None]

    def compute_output_shape(self, input_shape):
        return input_shape, (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "gain": self.gain, "floor": self.floor}


@keras.saving.register_keras_serializable(package="catclean")
class FluxRescale(layers.Layer):
    """Multiply predicted flux fractions ``(B, 2)`` by the stamp total ``(B, 1)``."""

    def call(self, inputs):
        frac, total = inputs
        return frac * total

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


def _flux_head(x, filters: int, name: str, batchnorm: bool = False):
    """Conv part + dense part of blend2flux (Fig. 3) on a normalised input tensor.

    ``batchnorm`` inserts batch normalisation after each convolution (not in the paper;
    an option that speeds up convergence of small models on short schedules).
    """
    f = int(filters)
    h = x
    for i, nf in enumerate([f, f, 2 * f, 2 * f, 4 * f]):
        if batchnorm:
            h = layers.Conv2D(nf, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(h)
            h = layers.BatchNormalization(name=f"{name}_bn{i}")(h)
            h = layers.Activation("relu", name=f"{name}_relu{i}")(h)
        else:
            h = layers.Conv2D(nf, 3, padding="same", activation="relu",
                              name=f"{name}_conv{i}")(h)
        h = layers.MaxPooling2D(2, name=f"{name}_pool{i}")(h)
    h = layers.Flatten(name=f"{name}_flat")(h)
    h = layers.Dense(4 * f, activation="relu", name=f"{name}_dense0")(h)
    h = layers.Dense(max(f // 4, 8), activation="relu", name=f"{name}_dense1")(h)
    return layers.Dense(2, activation="softplus", name=f"{name}_frac")(h)


def _check_size(n: int, factor: int, what: str) -> None:
    if n % factor:
        raise ValueError(f"blends.stamp={n} must be a multiple of {factor} for the {what}")


def build_blend2flux(stamp: int, filters: int = 256, batchnorm: bool = False) -> keras.Model:
    """blend2flux (Sec. 3.1): blend stamp (nanomaggies) -> (flux_central, flux_companion)."""
    _check_size(stamp, 32, "blend2flux (5 poolings)")
    inp = keras.Input((stamp, stamp, 1), name="blend")
    x, total = StampNorm(name="norm")(inp)
    frac = _flux_head(x, filters, "b2f", batchnorm)
    out = FluxRescale(name="flux")([frac, total])
    return keras.Model(inp, out, name="blend2flux")


def _conv(h, nf: int, batchnorm: bool):
    if not batchnorm:
        return layers.Conv2D(nf, 3, padding="same", activation="relu")(h)
    h = layers.Conv2D(nf, 3, padding="same", use_bias=False)(h)
    return layers.Activation("relu")(layers.BatchNormalization()(h))


def build_unet_core(stamp: int, depth: int = 5, filters: int = 32, channels: int = 1,
                    batchnorm: bool = False) -> keras.Model:
    """U-Net (Fig. 4) on a normalised stamp -> 2 sigmoid masks (central, companion).

    ``batchnorm`` adds batch normalisation after each convolution (not in the paper).
    """
    _check_size(stamp, 2 ** (depth - 1), f"U-Net of depth {depth}")
    inp = keras.Input((stamp, stamp, channels), name="normed")
    h, skips = inp, []
    for lvl in range(depth - 1):
        nf = filters * 2 ** lvl
        h = _conv(_conv(h, nf, batchnorm), nf, batchnorm)
        skips.append(h)
        h = layers.MaxPooling2D(2)(h)
    nf = filters * 2 ** (depth - 1)
    h = _conv(_conv(h, nf, batchnorm), nf, batchnorm)
    for lvl in reversed(range(depth - 1)):
        nf = filters * 2 ** lvl
        h = layers.Conv2DTranspose(nf, 2, strides=2, padding="same")(h)
        h = layers.Concatenate()([h, skips[lvl]])
        h = _conv(_conv(h, nf, batchnorm), nf, batchnorm)
    out = layers.Conv2D(2, 1, activation="sigmoid")(h)
    return keras.Model(inp, out, name="unet_core")


def build_unet(stamp: int, depth: int = 5, filters: int = 32, batchnorm: bool = False
               ) -> tuple[keras.Model, keras.Model]:
    """U-Net for pretraining: blend (nanomaggies) -> masks. Returns ``(unet, core)``."""
    core = build_unet_core(stamp, depth, filters, batchnorm=batchnorm)
    inp = keras.Input((stamp, stamp, 1), name="blend")
    x, _ = StampNorm(name="norm")(inp)
    masks = layers.Identity(name="masks")(core(x))
    return keras.Model(inp, masks, name="unet"), core


def build_blend2mask2flux(stamp: int, core: keras.Model, flux_filters: int = 128,
                          batchnorm: bool = False) -> keras.Model:
    """blend2mask2flux (Sec. 3.2): U-Net masks + blend -> 3-channel flux network.

    Outputs a dict ``{"flux": (B, 2) nanomaggies, "masks": (B, N, N, 2)}``. ``core`` is the
    (pretrained) U-Net core, shared, so end-to-end training updates it.
    """
    _check_size(stamp, 32, "blend2mask2flux flux network")
    inp = keras.Input((stamp, stamp, 1), name="blend")
    x, total = StampNorm(name="norm")(inp)
    masks = layers.Identity(name="masks")(core(x))
    h = layers.Concatenate(name="blend_and_masks")([x, masks])
    frac = _flux_head(h, flux_filters, "b2m2f", batchnorm)
    flux = FluxRescale(name="flux")([frac, total])
    return keras.Model(inp, {"flux": flux, "masks": masks}, name="blend2mask2flux")


def compile_flux(model: keras.Model, lr: float) -> None:
    """Adam + MAPE (Sec. 3.1)."""
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mape")


def compile_unet(model: keras.Model, lr: float) -> None:
    """Adam + binary cross-entropy on the masks (Sec. 3.2)."""
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")


def compile_b2m2f(model: keras.Model, lr: float, seg_weight: float = 0.1) -> None:
    """End-to-end loss: MAPE(flux) + ``seg_weight`` * BCE(masks) (Sec. 3.2: 0.1)."""
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss={"flux": "mape", "masks": "binary_crossentropy"},
                  loss_weights={"flux": 1.0, "masks": float(seg_weight)})


def _augment_np(rng: np.random.Generator, x: np.ndarray, m: np.ndarray | None):
    """Random dihedral transform of a batch (the same for the whole batch).

    Rotations and flips about the stamp centre keep the central galaxy central and do not
    change either flux, so they are free, label-preserving augmentation.
    """
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    x = np.rot90(x, k, axes=(1, 2))
    if flip:
        x = x[:, :, ::-1]
    if m is not None:
        m = np.rot90(m, k, axes=(1, 2))
        if flip:
            m = m[:, :, ::-1]
        m = np.ascontiguousarray(m)
    return np.ascontiguousarray(x), m


class BlendSequence(keras.utils.PyDataset):
    """Shuffled, augmented batches of blends for ``model.fit``.

    ``target`` is ``"flux"``, ``"masks"`` or ``"both"`` (dict targets for blend2mask2flux).
    """

    def __init__(self, images, flux, masks, batch_size: int, target: str, seed: int,
                 augment: bool = True):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x = images[..., None] if images.ndim == 3 else images
        self.flux = flux
        self.masks = masks
        self.bs = int(batch_size)
        self.target = target
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.x))

    def __len__(self):
        return int(np.ceil(len(self.x) / self.bs))

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))

    def __getitem__(self, i):
        idx = np.sort(self.order[i * self.bs:(i + 1) * self.bs])
        x = self.x[idx].astype(np.float32)
        m = self.masks[idx].astype(np.float32) if self.target != "flux" else None
        if self.augment:
            x, m = _augment_np(self.rng, x, m)
        f = self.flux[idx].astype(np.float32)
        if self.target == "flux":
            return x, f
        if self.target == "masks":
            return x, m
        return x, {"flux": f, "masks": m}


def fit(model: keras.Model, train: dict, val: dict, target: str, epochs: int,
        batch_size: int, seed: int, patience: int = 5, verbose: int = 2,
        callbacks: list | None = None) -> dict:
    """Train with validation monitoring, LR reduction on plateau and best-weight restore.

    ``train`` / ``val`` are dicts with ``images`` (n, N, N), ``flux`` (n, 2), ``masks``
    (n, N, N, 2). Returns the Keras history dict (floats).
    """
    seq = BlendSequence(train["images"], train["flux"], train["masks"], batch_size, target,
                        seed)
    vx = val["images"][..., None].astype(np.float32)
    vy = {"flux": val["flux"].astype(np.float32), "masks": val["masks"].astype(np.float32)}
    vy = vy[target] if target in vy else vy
    cbs = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                          patience=max(1, patience // 2), min_lr=1e-6),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                      restore_best_weights=True),
    ] + list(callbacks or [])
    hist = model.fit(seq, validation_data=(vx, vy), epochs=int(epochs), verbose=verbose,
                     callbacks=cbs)
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def predict_flux(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Fluxes (n, 2) in nanomaggies; works for blend2flux and blend2mask2flux."""
    out = model.predict(images[..., None].astype(np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(out["flux"] if isinstance(out, dict) else out, dtype=np.float64)


def predict_masks(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Mask probabilities (n, N, N, 2) from the U-Net or blend2mask2flux."""
    out = model.predict(images[..., None].astype(np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(out["masks"] if isinstance(out, dict) else out, dtype=np.float32)


def load_model(path) -> keras.Model:
    """Load a saved ``.keras`` model with ``safe_mode=True`` (no arbitrary code)."""
    return keras.saving.load_model(str(path), safe_mode=True, compile=False)
