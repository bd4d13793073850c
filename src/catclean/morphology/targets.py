"""Training targets of the RPN (numpy) and of the heads (TensorFlow), paper 003 Sec. 3.1.

RPN (:func:`rpn_targets`): an anchor is positive when its IoU with a ground-truth box is
>= 0.7 or it is the best anchor of that box, negative when its best IoU is < 0.3, and
ignored otherwise; ``rpn_anchors_per_image`` anchors are sampled, at most half positive.

Heads (:func:`detection_targets`): the ground-truth boxes are added to the proposals, an
RoI is positive when its best IoU with a ground truth is >= 0.5; ``train_rois_per_image``
RoIs are sampled with at most ``roi_positive_ratio`` positives (Table 1: 128, 0.33). Each
positive RoI gets the class, the box deltas and the 28x28 crop of its ground-truth mask.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .anchors import box_iou, encode_boxes
from .network import box_iou_tf, crop_boxes, encode_boxes_tf

POS_IOU, NEG_IOU = 0.7, 0.3


def rpn_targets(anchors: np.ndarray, gt_boxes: np.ndarray, rng: np.random.Generator,
                n_sample: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Objectness labels and box deltas of every anchor for one image.

    Parameters
    ----------
    anchors : ndarray (A, 4)
        Anchors in pixels.
    gt_boxes : ndarray (M, 4)
        Ground-truth boxes in pixels (only real instances; M may be 0).
    rng : numpy.random.Generator
        Draws the anchor sample.
    n_sample : int
        Anchors that enter the loss (positives + negatives).

    Returns
    -------
    match : ndarray (A,) int8
        1 positive, 0 negative, -1 ignored.
    deltas : ndarray (A, 4) float32
        Encoded deltas (:func:`~catclean.morphology.anchors.encode_boxes`) for positive
        anchors, zero elsewhere.
    """
    a = len(anchors)
    match = np.full(a, -1, np.int8)
    deltas = np.zeros((a, 4), np.float32)
    if len(gt_boxes) == 0:
        neg = rng.choice(a, size=min(n_sample, a), replace=False)
        match[neg] = 0
        return match, deltas
    iou = box_iou(anchors, gt_boxes)
    best_gt = iou.argmax(1)
    best_iou = iou.max(1)
    match[best_iou < NEG_IOU] = 0
    match[best_iou >= POS_IOU] = 1
    best_anchor = iou.argmax(0)
    match[best_anchor] = 1
    pos = np.flatnonzero(match == 1)
    if len(pos) > n_sample // 2:
        drop = rng.choice(pos, size=len(pos) - n_sample // 2, replace=False)
        match[drop] = -1
        pos = np.flatnonzero(match == 1)
    neg = np.flatnonzero(match == 0)
    n_neg = n_sample - len(pos)
    if len(neg) > n_neg:
        drop = rng.choice(neg, size=len(neg) - n_neg, replace=False)
        match[drop] = -1
    deltas[pos] = encode_boxes(gt_boxes[best_gt[pos]], anchors[pos])
    return match, deltas


def detection_targets(proposals, gt_boxes, gt_classes, gt_masks, n_rois: int,
                      positive_ratio: float, mask_shape: int = 28):
    """Sample RoIs and build the head targets for a batch (TensorFlow graph).

    Parameters
    ----------
    proposals : Tensor [B, P, 4]
        Normalised proposals (zero rows are padding).
    gt_boxes : Tensor [B, M, 4]
        Normalised ground-truth boxes (rows with class 0 are padding).
    gt_classes : Tensor [B, M] int32
        1 = spiral, 2 = elliptical, 0 = padding.
    gt_masks : Tensor [B, M, H, W] float32
        Full-size ground-truth masks (0/1).
    n_rois : int
        RoIs per image (Table 1 "Train ROIs per image").
    positive_ratio : float
        Largest fraction of positive RoIs (Table 1: 0.33).
    mask_shape : int
        Side of the mask targets (28).

    Returns
    -------
    dict
        ``rois`` [B, R, 4], ``classes`` [B, R] int32, ``deltas`` [B, R, 4],
        ``masks`` [B, R, mask_shape, mask_shape], ``valid`` [B, R] and ``positive``
        [B, R] (float32 weights).
    """
    b = tf.shape(proposals)[0]
    m = tf.shape(gt_boxes)[1]
    gt_valid = gt_classes > 0
    gt_boxes_z = tf.where(gt_valid[..., None], gt_boxes, 0.0)
    rois_all = tf.concat([proposals, gt_boxes_z], axis=1)
    iou = box_iou_tf(rois_all, gt_boxes_z)
    iou = tf.where(gt_valid[:, None, :], iou, -1.0)
    best = tf.reduce_max(iou, axis=2)
    arg = tf.argmax(iou, axis=2, output_type=tf.int32)
    area = (rois_all[..., 2] - rois_all[..., 0]) * (rois_all[..., 3] - rois_all[..., 1])
    box_ok = area > 0
    pos = box_ok & (best >= 0.5)
    neg = box_ok & (best < 0.5)
    rnd = tf.random.uniform(tf.shape(best))
    n_pos_max = max(1, int(round(n_rois * positive_ratio)))
    pos_key = tf.where(pos, rnd, -1.0)
    rank = tf.argsort(tf.argsort(-pos_key, axis=1, stable=True), axis=1, stable=True)
    keep_pos = pos & (rank < n_pos_max)
    key = tf.where(keep_pos, 2.0 + rnd, tf.where(neg, 1.0 + rnd, -1.0))
    n = min(n_rois, int(rois_all.shape[1]))
    vals, idx = tf.math.top_k(key, k=n, sorted=True)
    valid = vals > 0
    is_pos = vals >= 2.0
    rois = tf.gather(rois_all, idx, batch_dims=1)
    matched = tf.gather(arg, idx, batch_dims=1)
    classes = tf.where(is_pos, tf.gather(gt_classes, matched, batch_dims=1), 0)
    tboxes = tf.gather(gt_boxes_z, matched, batch_dims=1)
    deltas = tf.where(is_pos[..., None], encode_boxes_tf(tboxes, rois), 0.0)
    hh, ww = tf.shape(gt_masks)[2], tf.shape(gt_masks)[3]
    flat_masks = tf.reshape(tf.cast(gt_masks, tf.float32), [-1, hh, ww, 1])
    ind = tf.reshape(matched + m * tf.range(b)[:, None], [-1])
    mt = crop_mask_targets(flat_masks, tf.reshape(rois, [-1, 4]), ind, mask_shape)
    mt = tf.reshape(mt, [b, n, mask_shape, mask_shape])
    return {"rois": tf.stop_gradient(rois), "classes": classes,
            "deltas": tf.stop_gradient(deltas), "masks": tf.stop_gradient(mt),
            "valid": tf.cast(valid, tf.float32), "positive": tf.cast(is_pos, tf.float32)}


def crop_mask_targets(masks, boxes, box_indices, mask_shape: int = 28):
    """``mask_shape`` x ``mask_shape`` 0/1 targets of full-size masks inside boxes.

    Parameters
    ----------
    masks : Tensor [N, H, H, 1] float32
        Square full-size masks (0/1).
    boxes : Tensor [R, 4]
        Normalised pixel-edge boxes.
    box_indices : Tensor [R] int32
        Mask of each box.
    mask_shape : int

    Returns
    -------
    Tensor [R, mask_shape, mask_shape, 1]
        Cell ``k`` is the mask bilinearly sampled at the cell centre
        ``y1 + (k + 0.5) h / mask_shape`` (the convention of
        :func:`~catclean.morphology.network.crop_boxes` and of
        :func:`~catclean.morphology.infer.paste_mask`), rounded to 0/1.
    """
    side = masks.shape[1] or tf.shape(masks)[1]
    mt = tf.image.crop_and_resize(masks, crop_boxes(boxes, side, mask_shape), box_indices,
                                  [mask_shape, mask_shape])
    return tf.round(mt)
