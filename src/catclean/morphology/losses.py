"""Losses of the morphology Mask R-CNN (paper 003, Sec. 3.2, Eq. 2-3).

Total loss = RPN objectness + RPN box + L_cls + L_box + L_mask, where (Eq. 2)
``L = L_cls + L_box + L_mask`` is evaluated on the sampled RoIs: ``L_cls`` is the log loss
over background / spiral / elliptical, ``L_box`` a smooth-L1 on the class-specific deltas
of positive RoIs, and ``L_mask`` (Eq. 3) the mean binary cross-entropy of the m x m mask
of the ground-truth class, on positive RoIs only.
"""

from __future__ import annotations

import tensorflow as tf

from .targets import detection_targets


def smooth_l1(diff):
    """Smooth-L1 (Huber with delta 1) of a difference tensor, element-wise."""
    a = tf.abs(diff)
    return tf.where(a < 1.0, 0.5 * a * a, a - 0.5)


def rpn_class_loss(match, logits):
    """Objectness log loss over sampled anchors (``match`` 1 pos, 0 neg, -1 ignored)."""
    w = tf.cast(match >= 0, tf.float32)
    lab = tf.cast(match == 1, tf.float32)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=lab, logits=logits)
    return tf.math.divide_no_nan(tf.reduce_sum(ce * w), tf.reduce_sum(w))


def rpn_box_loss(match, target_deltas, deltas):
    """Smooth-L1 of the RPN deltas over positive anchors."""
    w = tf.cast(match == 1, tf.float32)
    per = tf.reduce_sum(smooth_l1(target_deltas - deltas), axis=-1)
    return tf.math.divide_no_nan(tf.reduce_sum(per * w), tf.reduce_sum(w))


def head_class_loss(t, logits):
    """L_cls: softmax log loss over the sampled RoIs."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t["classes"], logits=logits)
    return tf.math.divide_no_nan(tf.reduce_sum(ce * t["valid"]), tf.reduce_sum(t["valid"]))


def head_box_loss(t, deltas):
    """L_box: smooth-L1 of the deltas of the ground-truth class, positive RoIs."""
    d = tf.gather(deltas, t["classes"], batch_dims=2)
    per = tf.reduce_sum(smooth_l1(t["deltas"] - d), axis=-1)
    return tf.math.divide_no_nan(tf.reduce_sum(per * t["positive"]),
                                 tf.reduce_sum(t["positive"]))


def mask_loss(t, mask_logits):
    """L_mask (Eq. 3): mean per-pixel binary cross-entropy of the true-class mask."""
    m = tf.gather(tf.transpose(mask_logits, [0, 1, 4, 2, 3]), t["classes"], batch_dims=2)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=t["masks"], logits=m)
    per = tf.reduce_mean(ce, axis=[2, 3])
    return tf.math.divide_no_nan(tf.reduce_sum(per * t["positive"]),
                                 tf.reduce_sum(t["positive"]))


def compute_losses(model, batch, training=True):
    """All five losses of a training batch.

    Parameters
    ----------
    model : MaskRCNN
    batch : dict of Tensor
        ``images`` [B, S, S, 3] (0..255), ``rpn_match`` [B, A], ``rpn_deltas`` [B, A, 4],
        ``gt_boxes`` [B, M, 4] normalised, ``gt_classes`` [B, M], ``gt_masks``
        [B, M, S, S] (see :func:`catclean.morphology.train.make_batch`).
    training : bool

    Returns
    -------
    dict
        ``rpn_class``, ``rpn_box``, ``cls``, ``box``, ``mask`` and their sum ``total``.
    """
    cfg = model.cfg
    feats = model.features(batch["images"], training=training)
    logits, deltas = model.rpn_outputs(feats)
    props, _ = model.propose(logits, deltas, cfg.post_nms_rois_train)
    t = detection_targets(props, batch["gt_boxes"], batch["gt_classes"], batch["gt_masks"],
                          cfg.train_rois_per_image, cfg.roi_positive_ratio,
                          2 * cfg.mask_pool_size)
    cls_logits, box_deltas = model.heads(feats, t["rois"], training=training)
    mlog = model.mask_logits(feats, t["rois"], training=training)
    out = {"rpn_class": rpn_class_loss(batch["rpn_match"], logits),
           "rpn_box": rpn_box_loss(batch["rpn_match"], batch["rpn_deltas"], deltas),
           "cls": head_class_loss(t, cls_logits),
           "box": head_box_loss(t, box_deltas),
           "mask": mask_loss(t, mlog)}
    out["total"] = tf.add_n(list(out.values()))
    return out
