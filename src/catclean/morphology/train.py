"""Batches, augmentation (Sec. 4.2) and staged training (Fig. 8, Table 2) of paper 003.

Staged training: every entry ``(layers, epochs)`` of ``cfg.stages`` trains the layer
group ``layers`` (``heads`` = FPN + RPN + class/box/mask heads, ``5+``, ``4+``, ``3+``,
``all``) with a fresh optimiser at ``cfg.learning_rate`` (Table 2: heads first, then
deeper groups). The paper starts from MS-COCO weights; here nothing can be downloaded, so
the backbone is random at the start and the "heads" stage trains the heads on random
backbone features before the whole network is trained.

Augmentation (Sec. 4.2, Fig. 10, imgaug pipeline): Fliplr (p = 0.5), Flipud (p = 0.5),
OneOf(rotate 90, 180, 270) (always one of them) and AddElementwise (integer in
``[-add_range, add_range]`` per pixel, same for the three channels). Masks follow the
geometric transforms; boxes are recomputed from the masks.

Determinism: every random draw comes from ``numpy.random.default_rng(cfg.seed)`` or from
TensorFlow after ``keras.utils.set_random_seed(cfg.seed)`` with
``tf.config.experimental.enable_op_determinism()``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .anchors import mask_to_box
from .config import MorphConfig
from .losses import compute_losses
from .network import MaskRCNN, build_model, count_params, trainable_variables
from .targets import rpn_targets

log = logging.getLogger(__name__)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Area-average (integer factor) or bilinear-resize an (H, W, C) image to ``size``."""
    img = np.asarray(image, dtype=np.float32)
    h = img.shape[0]
    if h == size and img.shape[1] == size:
        return img
    if h % size == 0 and img.shape[1] == h:
        f = h // size
        return img.reshape(size, f, size, f, -1).mean(axis=(1, 3))
    return tf.image.resize(img, (size, size), method="area").numpy()


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask resized to ``size`` (area fraction >= 0.5)."""
    m = resize_image(np.asarray(mask, np.float32)[..., None], size)[..., 0]
    return m >= 0.5


def augment(image: np.ndarray, masks: np.ndarray, rng: np.random.Generator,
            add_range: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Sec. 4.2 pipeline on one image (H, W, 3) float and its masks (M, H, W)."""
    if rng.uniform() < 0.5:
        image, masks = image[:, ::-1], masks[:, :, ::-1]
    if rng.uniform() < 0.5:
        image, masks = image[::-1], masks[:, ::-1]
    k = int(rng.integers(1, 4))
    image = np.rot90(image, k, axes=(0, 1))
    masks = np.rot90(masks, k, axes=(1, 2))
    if add_range > 0:
        add = rng.integers(-add_range, add_range + 1, size=image.shape[:2])[..., None]
        image = np.clip(image + add, 0, 255)
    return np.ascontiguousarray(image), np.ascontiguousarray(masks)


def make_batch(fields: dict, idx, cfg: MorphConfig, rng: np.random.Generator,
               anchors_px: np.ndarray, do_augment: bool = True,
               mask_source: str = "otsu") -> dict:
    """Network inputs and targets for fields ``idx``.

    Parameters
    ----------
    fields : dict
        :func:`~catclean.morphology.simulate.simulate_fields` output.
    idx : sequence of int
        Field indices.
    cfg : MorphConfig
    rng : numpy.random.Generator
        Draws the augmentation and the RPN anchor sample.
    anchors_px : ndarray (A, 4)
        The network's anchors (pixels).
    do_augment : bool
    mask_source : {"otsu", "truth"}
        Annotation used as ground truth (paper: Otsu, Sec. 2.3).

    Returns
    -------
    dict of ndarray
        ``images``, ``rpn_match``, ``rpn_deltas``, ``gt_boxes``, ``gt_classes``,
        ``gt_masks`` (see :func:`~catclean.morphology.losses.compute_losses`).
    """
    s, m = cfg.image_size, cfg.max_gt_instances
    key = "otsu_masks" if mask_source == "otsu" else "truth_masks"
    out = {"images": [], "rpn_match": [], "rpn_deltas": [], "gt_boxes": [],
           "gt_classes": [], "gt_masks": []}
    for i in idx:
        img = resize_image(fields["images"][i], s)
        msk = resize_mask(fields[key][i], s)[None]
        if do_augment:
            img, msk = augment(img, msk, rng)
        boxes = np.array([mask_to_box(mm) for mm in msk])
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        classes = np.where(ok, int(fields["classes"][i]), 0)
        match, deltas = rpn_targets(anchors_px, boxes[ok], rng, cfg.rpn_anchors_per_image)
        gb = np.zeros((m, 4), np.float32)
        gc = np.zeros(m, np.int32)
        gm = np.zeros((m, s, s), np.float32)
        n = min(m, len(boxes))
        gb[:n] = boxes[:n] / s
        gc[:n] = classes[:n]
        gm[:n] = msk[:n]
        out["images"].append(img)
        out["rpn_match"].append(match)
        out["rpn_deltas"].append(deltas)
        out["gt_boxes"].append(gb)
        out["gt_classes"].append(gc)
        out["gt_masks"].append(gm)
    return {k: np.stack(v) for k, v in out.items()}


def make_optimizer(cfg: MorphConfig, learning_rate: float | None = None):
    """Adam (default, from scratch) or SGD with momentum 0.9 (paper, Table 1); clipnorm 5."""
    lr = cfg.learning_rate if learning_rate is None else learning_rate
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, clipnorm=5.0)
    return keras.optimizers.Adam(lr, clipnorm=5.0)


def set_determinism(seed: int) -> None:
    """Seed Python, numpy, TensorFlow and Keras; deterministic TF ops."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def train_model(cfg: MorphConfig, fields: dict, train_idx, val_idx=None,
                mask_source: str = "otsu", time_budget_s: float | None = None,
                log_fn=None) -> tuple[MaskRCNN, dict]:
    """Staged training of a Mask R-CNN on simulated fields.

    Parameters
    ----------
    cfg : MorphConfig
        Network, schedule (``stages``, ``steps_per_epoch``, ``batch_size``,
        ``learning_rate``) and ``seed``.
    fields : dict
        :func:`~catclean.morphology.simulate.simulate_fields` output.
    train_idx, val_idx : sequence of int
        Training fields and (optional) validation fields; the validation loss (no
        augmentation) is logged after each epoch.
    mask_source : {"otsu", "truth"}
    time_budget_s : float, optional
        Stop (after the current step) once this many seconds of training have passed;
        the remaining stages are skipped and the history says so.
    log_fn : callable, optional
        Called with one line of text per epoch (default: logging at INFO).

    Returns
    -------
    model : MaskRCNN
    history : dict
        Per-epoch mean losses, stage names, wall time (s), steps, parameter count.
    """
    say = log_fn or log.info
    set_determinism(cfg.seed)
    model = build_model(cfg)
    rng = np.random.default_rng(cfg.seed)
    train_idx = np.asarray(train_idx)
    history = {"epochs": [], "params": count_params(model), "stopped_early": False}
    t0 = time.perf_counter()
    order, pos = rng.permutation(train_idx), 0
    stop = False
    n_steps = 0
    variables = list(model.trainable_weights)
    flags = [tf.Variable(0.0, trainable=False) for _ in variables]
    opt = make_optimizer(cfg)
    opt.build(variables)
    step = _make_step(model, variables, flags, opt)
    for stage, (layers_spec, epochs) in enumerate(cfg.stages):
        on = {id(v) for v in trainable_variables(model, layers_spec)}
        for v, f in zip(variables, flags):
            f.assign(1.0 if id(v) in on else 0.0)
        opt.learning_rate.assign(cfg.learning_rate)
        for ep in range(epochs):
            sums: dict = {}
            for _ in range(cfg.steps_per_epoch):
                if pos + cfg.batch_size > len(order):
                    order, pos = rng.permutation(train_idx), 0
                idx = order[pos:pos + cfg.batch_size]
                pos += cfg.batch_size
                batch = make_batch(fields, idx, cfg, rng, model.anchors_px, True, mask_source)
                losses = step({k: tf.constant(v) for k, v in batch.items()})
                n_steps += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
                    stop = True
                    break
            rec = {"stage": stage, "layers": layers_spec, "epoch": ep,
                   "time_s": time.perf_counter() - t0}
            done = max(1, n_steps - sum(e.get("n_steps", 0) for e in history["epochs"]))
            rec["n_steps"] = done
            rec.update({k: v / done for k, v in sums.items()})
            if val_idx is not None and len(val_idx):
                rec["val_total"] = validation_loss(model, cfg, fields, val_idx, mask_source)
            history["epochs"].append(rec)
            say(json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                            for k, v in rec.items()}))
            if stop:
                break
        if stop:
            history["stopped_early"] = True
            break
    history["train_time_s"] = time.perf_counter() - t0
    history["steps"] = n_steps
    return model, history


def _make_step(model, variables, flags, opt):
    """One compiled training step for every stage.

    The stage's layer group is selected by the 0/1 ``flags`` that multiply the gradients,
    so changing stage does not retrace the graph (tracing costs about a minute on 2
    cores). Frozen variables get zero gradients from the start of training, so Adam / SGD
    leave them unchanged.
    """

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape() as tape:
            losses = compute_losses(model, batch, training=True)
        grads = tape.gradient(losses["total"], variables)
        grads = [tf.zeros_like(v) if g is None else g * f
                 for g, v, f in zip(grads, variables, flags)]
        opt.apply_gradients(zip(grads, variables))
        return losses

    return step


@tf.function(reduce_retracing=True)
def _forward_losses(model, batch):
    return compute_losses(model, batch, training=False)


def validation_loss(model: MaskRCNN, cfg: MorphConfig, fields: dict, idx,
                    mask_source: str = "otsu", max_batches: int = 4) -> float:
    """Mean total loss (no augmentation, fixed RPN sample) over a few validation batches."""
    rng = np.random.default_rng(0)
    idx = np.asarray(idx)
    tot, n = 0.0, 0
    for b in range(0, min(len(idx), max_batches * cfg.batch_size), cfg.batch_size):
        batch = make_batch(fields, idx[b:b + cfg.batch_size], cfg, rng, model.anchors_px,
                           False, mask_source)
        tot += float(_forward_losses(model, {k: tf.constant(v) for k, v in batch.items()}
                                     )["total"])
        n += 1
    return tot / max(n, 1)


def save_model(model: MaskRCNN, path: str | Path) -> Path:
    """Save weights (``<path>.weights.h5``) and config (``<path>.json``); returns the stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".keras", ".h5", ".json") else path
    stem.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(stem) + ".weights.h5")
    Path(str(stem) + ".json").write_text(json.dumps(model.cfg.to_dict(), indent=1))
    return stem


def load_model(path: str | Path) -> MaskRCNN:
    """Rebuild a network saved by :func:`save_model` (no code is deserialised)."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".keras", ".h5", ".json") else path
    if str(stem).endswith(".weights"):
        stem = Path(str(stem)[: -len(".weights")])
    cfg = MorphConfig.from_dict(json.loads(Path(str(stem) + ".json").read_text()))
    model = build_model(cfg)
    model.load_weights(str(stem) + ".weights.h5")
    return model
