"""Mask R-CNN in Keras 3 on TensorFlow (paper 003, Sec. 3.1, Fig. 3, Table 1).

Architecture
------------
* **Backbone**: a ResNet (:data:`~catclean.morphology.config.RESNET_DEPTHS`; the paper
  uses ResNet-101) written here in Keras. KerasHub's ``ResNetBackbone`` is not used:
  ``keras-hub==0.32.0`` pulls ``tensorflow-text`` and with it the full ``tensorflow``
  wheel next to the pinned ``tensorflow-cpu`` (checked with ``pip install --dry-run``).
  No pretrained weights can be downloaded here, so every network trains from scratch
  (the paper starts from MS-COCO weights, Sec. 4.1). Group normalisation replaces
  batch normalisation: batches are small and inference must not depend on the batch.
* **FPN**: lateral 1x1 + top-down nearest upsampling + 3x3 smoothing -> P2..P5, and P6
  by strided max-pooling of P5 (strides 4..64, Table 1).
* **RPN**: one shared 3x3 conv head on every level; per anchor an objectness logit and
  four box deltas; anchors of scales {8, 16, 32, 64, 128} px, ratios {0.5, 1, 2}.
* **Proposals**: top ``pre_nms_top_n`` anchors by objectness, decoded, clipped, then
  ``tf.image.combined_non_max_suppression`` (IoU ``rpn_nms_threshold``).
* **RoIAlign**: ``tf.image.crop_and_resize`` on the FPN level chosen by the RoI size
  (``k = 4 + log2(sqrt(wh) / 224)``, clipped to 2..5), 7x7 for the box head and 14x14
  for the mask head. The boxes go through :func:`crop_boxes` first, so that the crop
  samples the centres of an even grid of cells over the box ("aligned" RoIAlign), see
  the coordinate conventions below.
* **Heads**: two fully connected layers -> class logits (background / spiral /
  elliptical) and class-specific box deltas; four 3x3 convs + 2x deconvolution ->
  28x28 mask logits per class.
* **Detection**: class-specific boxes + per-class NMS (``combined_non_max_suppression``),
  then masks for the kept boxes.

Coordinate conventions
----------------------
Boxes are ``(y1, x1, y2, x2)`` in *pixel-edge* coordinates: pixel ``i`` covers
``[i, i + 1)``, its centre is at ``i + 0.5`` (:func:`~catclean.morphology.anchors.mask_to_box`
gives ``(ymin, xmin, ymax + 1, xmax + 1)``). Inside the network they are normalised by the
image side ``S``, so a box means the same region on every FPN level and at every image
size. ``tf.image.crop_and_resize`` uses another convention: a normalised coordinate ``y``
samples the *pixel index* ``y (H - 1)`` (pixel centres at integers, the box corners at the
first and last sample). Passing edge boxes straight to it samples ``y1 (H - 1) + k (y2 -
y1) (H - 1) / (c - 1)``, a grid stretched by ``c / (c - 1)`` and shifted by ``0.5 - y / H``
pixels of the map, different on every level. :func:`crop_boxes` converts an edge box
into the ``crop_and_resize`` box whose ``c`` samples fall on the centres of ``c`` equal
cells of the box; :func:`catclean.morphology.infer.paste_mask` is its exact inverse (cell
``k`` of an m x m mask is centred at ``y1 + (k + 0.5) h / m``).

The network takes images in 0..255 (uint8 JPEG values) as float32.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from .anchors import BOX_STD, generate_anchors
from .config import RESNET_DEPTHS, MorphConfig

#: layer-name prefixes trained in each stage of Table 2 / Fig. 8
HEAD_PREFIXES = ("fpn_", "rpn_", "head_", "mask_")
STAGE_PREFIXES = {
    "heads": HEAD_PREFIXES,
    "5+": ("res5_",) + HEAD_PREFIXES,
    "4+": ("res4_", "res5_") + HEAD_PREFIXES,
    "3+": ("res3_", "res4_", "res5_") + HEAD_PREFIXES,
    "all": ("",),
}


def _norm(channels: int, name: str) -> layers.Layer:
    return layers.GroupNormalization(groups=math.gcd(8, channels), epsilon=1e-5,
                                     name=name)


def _conv(filters, kernel, stride, name):
    return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                         kernel_initializer="he_normal", name=name)


def _basic_block(x, filters, stride, name):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _norm(filters, name + "_sc_gn")(_conv(filters, 1, stride,
                                                         name + "_sc")(x))
    y = layers.ReLU(name=name + "_relu1")(_norm(filters, name + "_gn1")(
        _conv(filters, 3, stride, name + "_conv1")(x)))
    y = _norm(filters, name + "_gn2")(_conv(filters, 3, 1, name + "_conv2")(y))
    return layers.ReLU(name=name + "_out")(layers.Add(name=name + "_add")([y, shortcut]))


def _bottleneck_block(x, filters, stride, name):
    out = 4 * filters
    shortcut = x
    if stride != 1 or x.shape[-1] != out:
        shortcut = _norm(out, name + "_sc_gn")(_conv(out, 1, stride, name + "_sc")(x))
    y = layers.ReLU(name=name + "_relu1")(_norm(filters, name + "_gn1")(
        _conv(filters, 1, 1, name + "_conv1")(x)))
    y = layers.ReLU(name=name + "_relu2")(_norm(filters, name + "_gn2")(
        _conv(filters, 3, stride, name + "_conv2")(y)))
    y = _norm(out, name + "_gn3")(_conv(out, 1, 1, name + "_conv3")(y))
    return layers.ReLU(name=name + "_out")(layers.Add(name=name + "_add")([y, shortcut]))


def build_backbone_fpn(cfg: MorphConfig) -> keras.Model:
    """ResNet backbone (C2..C5) + FPN (P2..P6) as one functional model.

    Parameters
    ----------
    cfg : MorphConfig
        ``backbone``, ``backbone_width``, ``fpn_channels``, ``image_size`` are used.

    Returns
    -------
    keras.Model
        Input ``(image_size, image_size, 3)`` float32 in 0..255; outputs the list
        ``[P2, P3, P4, P5, P6]`` with strides 4, 8, 16, 32, 64.
    """
    kind, blocks = RESNET_DEPTHS[cfg.backbone]
    block = _basic_block if kind == "basic" else _bottleneck_block
    w = cfg.backbone_width
    inp = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="stem_scale")(inp)
    x = _conv(w, 7, 2, "stem_conv")(x)
    x = layers.ReLU(name="stem_relu")(_norm(w, "stem_gn")(x))
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    cs = []
    for s, n in enumerate(blocks):
        for b in range(n):
            stride = 2 if (b == 0 and s > 0) else 1
            x = block(x, w * 2 ** s, stride, f"res{s + 2}_b{b}")
        cs.append(x)
    f = cfg.fpn_channels
    lat = [layers.Conv2D(f, 1, name=f"fpn_c{i + 2}p{i + 2}")(c) for i, c in enumerate(cs)]
    p = [None] * 4
    p[3] = lat[3]
    for i in (2, 1, 0):
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"fpn_p{i + 3}up")(p[i + 1])
        p[i] = layers.Add(name=f"fpn_p{i + 2}add")([up, lat[i]])
    outs = [layers.Conv2D(f, 3, padding="same", name=f"fpn_p{i + 2}")(p[i]) for i in range(4)]
    outs.append(layers.MaxPooling2D(1, strides=2, name="fpn_p6")(outs[3]))
    return keras.Model(inp, outs, name="backbone_fpn")


def build_rpn(cfg: MorphConfig) -> keras.Model:
    """Shared RPN head: feature map -> (objectness logits, box deltas) per anchor."""
    a = len(cfg.anchor_ratios)
    inp = keras.Input((None, None, cfg.fpn_channels), name="rpn_feature")
    x = layers.Conv2D(cfg.fpn_channels, 3, padding="same", activation="relu",
                      name="rpn_conv_shared")(inp)
    logits = layers.Conv2D(a, 1, name="rpn_class_raw")(x)
    deltas = layers.Conv2D(4 * a, 1, name="rpn_bbox_pred",
                           kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(x)
    return keras.Model(inp, [logits, deltas], name="rpn_model")


def build_box_head(cfg: MorphConfig) -> keras.Model:
    """RoI classifier and box regressor: pooled 7x7 RoI -> class logits, deltas."""
    p, nc = cfg.pool_size, cfg.num_classes
    inp = keras.Input((p, p, cfg.fpn_channels), name="head_roi")
    x = layers.Flatten(name="head_flatten")(inp)
    x = layers.Dense(cfg.head_fc, activation="relu", name="head_fc1")(x)
    x = layers.Dense(cfg.head_fc, activation="relu", name="head_fc2")(x)
    logits = layers.Dense(nc, name="head_class_logits")(x)
    deltas = layers.Dense(4 * nc, name="head_bbox",
                          kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))(x)
    deltas = layers.Reshape((nc, 4), name="head_bbox_reshape")(deltas)
    return keras.Model(inp, [logits, deltas], name="head_model")


def build_mask_head(cfg: MorphConfig) -> keras.Model:
    """Mask head: pooled 14x14 RoI -> 28x28 mask logits, one channel per class."""
    p, c = cfg.mask_pool_size, cfg.mask_channels
    inp = keras.Input((p, p, cfg.fpn_channels), name="mask_roi")
    x = inp
    for i in range(4):
        x = layers.Conv2D(c, 3, padding="same", activation="relu", name=f"mask_conv{i + 1}")(x)
    x = layers.Conv2DTranspose(c, 2, strides=2, activation="relu", name="mask_deconv")(x)
    logits = layers.Conv2D(cfg.num_classes, 1, name="mask_logits")(x)
    return keras.Model(inp, logits, name="mask_model")


def decode_boxes_tf(deltas, reference):
    """TensorFlow :func:`~catclean.morphology.anchors.decode_boxes` (any leading shape)."""
    d = deltas * BOX_STD
    h = reference[..., 2] - reference[..., 0]
    w = reference[..., 3] - reference[..., 1]
    cy = reference[..., 0] + 0.5 * h + d[..., 0] * h
    cx = reference[..., 1] + 0.5 * w + d[..., 1] * w
    h = h * tf.exp(tf.minimum(d[..., 2], 4.0))
    w = w * tf.exp(tf.minimum(d[..., 3], 4.0))
    return tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def encode_boxes_tf(boxes, reference):
    """TensorFlow :func:`~catclean.morphology.anchors.encode_boxes`, safe for empty boxes."""
    eps = 1e-6
    h = tf.maximum(boxes[..., 2] - boxes[..., 0], eps)
    w = tf.maximum(boxes[..., 3] - boxes[..., 1], eps)
    rh = tf.maximum(reference[..., 2] - reference[..., 0], eps)
    rw = tf.maximum(reference[..., 3] - reference[..., 1], eps)
    d = tf.stack([(boxes[..., 0] + 0.5 * h - reference[..., 0] - 0.5 * rh) / rh,
                  (boxes[..., 1] + 0.5 * w - reference[..., 1] - 0.5 * rw) / rw,
                  tf.math.log(h / rh), tf.math.log(w / rw)], axis=-1)
    return d / BOX_STD


def crop_boxes(boxes, map_size, crop_size: int):
    """``tf.image.crop_and_resize`` boxes that sample cell centres of edge boxes.

    Parameters
    ----------
    boxes : Tensor [..., 4]
        ``(y1, x1, y2, x2)`` pixel-edge boxes normalised by the image side.
    map_size : int or scalar Tensor
        Side (pixels) of the square map that is cropped (an FPN level or a mask).
    crop_size : int
        Samples per side of the crop.

    Returns
    -------
    Tensor [..., 4]
        Boxes for ``crop_and_resize`` on that map: sample ``k`` of the crop lands on
        ``y1 + (k + 0.5) h / crop_size`` (edge coordinates of the map, ``h = y2 - y1``),
        i.e. pixel index ``y1 + (k + 0.5) h / crop_size - 0.5``.
    """
    n = tf.cast(map_size, boxes.dtype)
    b = boxes * n
    half = 0.5 / float(crop_size)
    h = b[..., 2] - b[..., 0]
    w = b[..., 3] - b[..., 1]
    out = tf.stack([b[..., 0] + half * h - 0.5, b[..., 1] + half * w - 0.5,
                    b[..., 2] - half * h - 0.5, b[..., 3] - half * w - 0.5], axis=-1)
    return out / tf.maximum(n - 1.0, 1.0)


def box_iou_tf(a, b):
    """IoU of boxes ``a`` [B, N, 4] with ``b`` [B, M, 4] -> [B, N, M]."""
    a = a[:, :, None, :]
    b = b[:, None, :, :]
    inter = (tf.nn.relu(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]))
             * tf.nn.relu(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1])))
    area_a = tf.nn.relu(a[..., 2] - a[..., 0]) * tf.nn.relu(a[..., 3] - a[..., 1])
    area_b = tf.nn.relu(b[..., 2] - b[..., 0]) * tf.nn.relu(b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return tf.math.divide_no_nan(inter, union)


class MaskRCNN(keras.Model):
    """Mask R-CNN for the morphological segmentation of galaxies (paper 003).

    Parameters
    ----------
    cfg : MorphConfig
        Network hyper-parameters (see :mod:`catclean.morphology.config`).

    Notes
    -----
    ``model(images)`` runs detection (:meth:`detect`). Training goes through
    :func:`catclean.morphology.losses.compute_losses`.
    """

    def __init__(self, cfg: MorphConfig, **kwargs):
        super().__init__(name=kwargs.pop("name", "mask_rcnn"), **kwargs)
        self.cfg = cfg
        self.backbone_fpn = build_backbone_fpn(cfg)
        self.rpn = build_rpn(cfg)
        self.box_head = build_box_head(cfg)
        self.mask_head = build_mask_head(cfg)
        self.anchors_px = generate_anchors(cfg.anchor_scales, cfg.anchor_ratios,
                                           cfg.backbone_strides, cfg.image_size)
        self.anchors = tf.constant(self.anchors_px / cfg.image_size, tf.float32)
        self.built = True

    # ---------------------------------------------------------------- stages
    def features(self, images, training=False):
        """FPN maps ``[P2, ..., P6]`` of a batch of images (0..255)."""
        return self.backbone_fpn(images, training=training)

    def rpn_outputs(self, feats):
        """Objectness logits [B, A] and deltas [B, A, 4] over all anchors."""
        logits, deltas = [], []
        for p in feats:
            lo, de = self.rpn(p)
            b = tf.shape(lo)[0]
            logits.append(tf.reshape(lo, [b, -1]))
            deltas.append(tf.reshape(de, [b, -1, 4]))
        return tf.concat(logits, 1), tf.concat(deltas, 1)

    def propose(self, rpn_logits, rpn_deltas, n_post):
        """Proposal layer: top-k by objectness, decode, clip, NMS (Sec. 3.1).

        Returns
        -------
        boxes : Tensor [B, n_post, 4]
            Normalised proposals, zero-padded.
        n_valid : Tensor [B]
            Number of real proposals per image.
        """
        cfg = self.cfg
        k = min(cfg.pre_nms_top_n, int(self.anchors.shape[0]))
        scores, idx = tf.math.top_k(tf.sigmoid(rpn_logits), k=k, sorted=True)
        deltas = tf.gather(rpn_deltas, idx, batch_dims=1)
        anchors = tf.gather(self.anchors, idx)
        boxes = tf.clip_by_value(decode_boxes_tf(deltas, anchors), 0.0, 1.0)
        out = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], scores[:, :, None], max_output_size_per_class=n_post,
            max_total_size=n_post, iou_threshold=cfg.rpn_nms_threshold,
            score_threshold=0.0, pad_per_class=False, clip_boxes=True)
        return tf.stop_gradient(out.nmsed_boxes), out.valid_detections

    def roi_align(self, feats, rois, size):
        """Multi-level RoIAlign with ``tf.image.crop_and_resize``.

        Parameters
        ----------
        feats : list of Tensor
            ``[P2, P3, P4, P5, ...]`` (only P2..P5 are pooled).
        rois : Tensor [B, R, 4]
            Normalised pixel-edge boxes (converted per level by :func:`crop_boxes`).
        size : int
            Output side (pixels of the pooled map).

        Returns
        -------
        Tensor [B * R, size, size, C]
        """
        b = tf.shape(rois)[0]
        r = tf.shape(rois)[1]
        flat = tf.reshape(rois, [-1, 4])
        ind = tf.repeat(tf.range(b), r)
        h = tf.maximum(flat[:, 2] - flat[:, 0], 1e-6)
        w = tf.maximum(flat[:, 3] - flat[:, 1], 1e-6)
        side = tf.sqrt(h * w) * float(self.cfg.image_size)
        level = tf.clip_by_value(4.0 + tf.round(tf.math.log(side / 224.0) / math.log(2.0)),
                                 2.0, 5.0)
        onehot = tf.one_hot(tf.cast(level, tf.int32) - 2, 4)
        pooled = 0.0
        for i in range(4):
            side = feats[i].shape[1] or tf.shape(feats[i])[1]
            crop = tf.image.crop_and_resize(feats[i], crop_boxes(flat, side, size), ind,
                                            [size, size])
            pooled = pooled + crop * onehot[:, i, None, None, None]
        return pooled

    def heads(self, feats, rois, training=False):
        """Class logits [B, R, nc] and deltas [B, R, nc, 4] for RoIs [B, R, 4]."""
        b, r = tf.shape(rois)[0], tf.shape(rois)[1]
        logits, deltas = self.box_head(self.roi_align(feats, rois, self.cfg.pool_size),
                                       training=training)
        nc = self.cfg.num_classes
        return tf.reshape(logits, [b, r, nc]), tf.reshape(deltas, [b, r, nc, 4])

    def mask_logits(self, feats, rois, training=False):
        """Mask logits [B, R, 28, 28, nc] for RoIs [B, R, 4]."""
        b, r = tf.shape(rois)[0], tf.shape(rois)[1]
        m = self.mask_head(self.roi_align(feats, rois, self.cfg.mask_pool_size),
                           training=training)
        s = 2 * self.cfg.mask_pool_size
        return tf.reshape(m, [b, r, s, s, self.cfg.num_classes])

    def detect(self, images):
        """Detections of a batch of images.

        Parameters
        ----------
        images : Tensor [B, S, S, 3]
            float32, 0..255, ``S = cfg.image_size``.

        Returns
        -------
        dict
            ``boxes`` [B, D, 4] normalised, ``scores`` [B, D], ``classes`` [B, D] int32
            (1 = spiral, 2 = elliptical, 0 = padding), ``masks`` [B, D, 28, 28]
            probabilities for the detected class, ``num`` [B] valid detections.
        """
        cfg = self.cfg
        images = tf.cast(images, tf.float32)
        feats = self.features(images, training=False)
        logits, deltas = self.rpn_outputs(feats)
        rois, n_valid = self.propose(logits, deltas, cfg.post_nms_rois_infer)
        cls_logits, box_deltas = self.heads(feats, rois)
        probs = tf.nn.softmax(cls_logits, axis=-1)
        valid = tf.sequence_mask(n_valid, tf.shape(rois)[1], dtype=tf.float32)
        scores = probs[:, :, 1:] * valid[:, :, None]
        boxes = tf.clip_by_value(decode_boxes_tf(box_deltas[:, :, 1:, :], rois[:, :, None, :]),
                                 0.0, 1.0)
        det = tf.image.combined_non_max_suppression(
            boxes, scores, max_output_size_per_class=cfg.max_instances,
            max_total_size=cfg.max_instances, iou_threshold=cfg.detection_nms_threshold,
            score_threshold=cfg.detection_min_confidence, pad_per_class=False,
            clip_boxes=True)
        num = det.valid_detections
        dvalid = tf.sequence_mask(num, cfg.max_instances)
        classes = tf.where(dvalid, tf.cast(det.nmsed_classes, tf.int32) + 1, 0)
        m = tf.sigmoid(self.mask_logits(feats, det.nmsed_boxes))
        masks = tf.gather(tf.transpose(m, [0, 1, 4, 2, 3]), classes, batch_dims=2)
        return {"boxes": det.nmsed_boxes, "scores": det.nmsed_scores * tf.cast(dvalid, tf.float32),
                "classes": classes, "masks": masks, "num": num}

    def call(self, images, training=False):
        return self.detect(images)


def build_model(cfg: MorphConfig) -> MaskRCNN:
    """A :class:`MaskRCNN` with its weights created (random init, from scratch)."""
    model = MaskRCNN(cfg)
    dummy = np.zeros((1, cfg.image_size, cfg.image_size, 3), np.float32)
    model.detect(dummy)
    return model


def trainable_variables(model: MaskRCNN, layers_spec: str) -> list:
    """Variables trained in a stage of Table 2 (``heads``, ``5+``, ``4+``, ``3+``, ``all``)."""
    prefixes = STAGE_PREFIXES[layers_spec]
    out = []
    for sub in (model.backbone_fpn, model.rpn, model.box_head, model.mask_head):
        for layer in sub.layers:
            if layer.weights and any(layer.name.startswith(p) for p in prefixes):
                out.extend(layer.trainable_weights)
    return out


def count_params(model: MaskRCNN) -> int:
    """Number of weights of the network."""
    return int(sum(np.prod(v.shape) for v in model.weights))
