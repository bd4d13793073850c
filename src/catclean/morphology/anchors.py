"""Anchors, box overlaps and box encoding (paper 003, Sec. 3.1, Table 1).

Boxes are ``(y1, x1, y2, x2)`` with ``y2``/``x2`` exclusive. In numpy helpers they are in
pixels; inside the network they are normalised by the image side (``[0, 1]``).

Anchors follow Table 1 (two-class network): one scale per FPN level, scales
{8, 16, 32, 64, 128} px at backbone strides {4, 8, 16, 32, 64}, three aspect ratios
{0.5, 1, 2}. Anchor order is level-major, then row, column, ratio -- the order in which
the RPN head's outputs are flattened.
"""

from __future__ import annotations

import numpy as np

#: std-devs that divide the encoded deltas (dy, dx, dh, dw), as in Faster/Mask R-CNN
BOX_STD = np.array([0.1, 0.1, 0.2, 0.2], dtype=np.float32)


def level_anchors(scale: float, ratios, stride: int, image_size: int) -> np.ndarray:
    """Anchors of one pyramid level.

    Parameters
    ----------
    scale : float
        Anchor side for ratio 1 (pixels).
    ratios : sequence of float
        Width / height aspect ratios.
    stride : int
        Feature stride of the level (pixels); anchor centres are at
        ``(i + 0.5) * stride``.
    image_size : int
        Side of the square network input (pixels).

    Returns
    -------
    ndarray, shape (n_cells * len(ratios), 4)
        Boxes in pixels, row-major over cells, ratio fastest.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    heights = scale / np.sqrt(ratios)
    widths = scale * np.sqrt(ratios)
    n = int(np.ceil(image_size / stride))
    centres = (np.arange(n) + 0.5) * stride
    cy, cx = np.meshgrid(centres, centres, indexing="ij")
    cy = cy.reshape(-1, 1)
    cx = cx.reshape(-1, 1)
    boxes = np.stack([cy - heights / 2, cx - widths / 2, cy + heights / 2,
                      cx + widths / 2], axis=-1)
    return boxes.reshape(-1, 4).astype(np.float32)


def generate_anchors(scales, ratios, strides, image_size: int) -> np.ndarray:
    """All anchors of the FPN, concatenated level by level (pixels, shape (A, 4))."""
    if len(scales) != len(strides):
        raise ValueError("one anchor scale per backbone stride is expected (Table 1)")
    return np.concatenate([level_anchors(s, ratios, st, image_size)
                           for s, st in zip(scales, strides)], axis=0)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``(y1, x1, y2, x2)`` boxes (clipped at zero)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(
        boxes[..., 3] - boxes[..., 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union (paper Eq. 1) of every box of ``a`` with every box of ``b``.

    Returns
    -------
    ndarray, shape (len(a), len(b))
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    y1 = np.maximum(a[:, None, 0], b[None, :, 0])
    x1 = np.maximum(a[:, None, 1], b[None, :, 1])
    y2 = np.minimum(a[:, None, 2], b[None, :, 2])
    x2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(y2 - y1, 0, None) * np.clip(x2 - x1, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def encode_boxes(boxes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Deltas that turn ``reference`` boxes into ``boxes``, divided by :data:`BOX_STD`.

    ``dy = (cy - cy_ref) / h_ref``, ``dx = (cx - cx_ref) / w_ref``, ``dh = log(h / h_ref)``,
    ``dw = log(w / w_ref)`` (Faster R-CNN parameterisation, used by Mask R-CNN).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    h, w = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    rh, rw = ref[..., 2] - ref[..., 0], ref[..., 3] - ref[..., 1]
    d = np.stack([(boxes[..., 0] + 0.5 * h - ref[..., 0] - 0.5 * rh) / rh,
                  (boxes[..., 1] + 0.5 * w - ref[..., 1] - 0.5 * rw) / rw,
                  np.log(h / rh), np.log(w / rw)], axis=-1)
    return (d / BOX_STD).astype(np.float32)


def decode_boxes(deltas: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_boxes`."""
    d = np.asarray(deltas, dtype=np.float64) * BOX_STD
    ref = np.asarray(reference, dtype=np.float64)
    rh, rw = ref[..., 2] - ref[..., 0], ref[..., 3] - ref[..., 1]
    cy = ref[..., 0] + 0.5 * rh + d[..., 0] * rh
    cx = ref[..., 1] + 0.5 * rw + d[..., 1] * rw
    h = rh * np.exp(d[..., 2])
    w = rw * np.exp(d[..., 3])
    return np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w],
                    axis=-1).astype(np.float32)


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight ``(y1, x1, y2, x2)`` pixel box of a boolean mask (zeros if the mask is empty)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros(4, dtype=np.float32)
    return np.array([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1], dtype=np.float32)
