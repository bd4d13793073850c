"""Inference and the pipeline-facing functions of the morphology stage (paper 003, Sec. 5.5).

:func:`predict` runs the network on fields and returns per-instance class, score, box and
full-resolution mask. :func:`segment_hosts` keeps the host (the detection covering the
field centre) of every field and returns one row per field; :func:`in_host_mask` tells
which catalog sources fall on a host mask.

Input images are (N, H, W, 3) gri colour fields, uint8 or float. Floats are taken as
JPEG-like 0..255 values, or as 0..1 when their maximum is <= 1. Images are
area-resampled to the network size and the masks back to (H, W). The network was trained
on 256 px fields at 0.396"/pix: fields at other pixel scales should be resampled to it
first; ``pixscale`` only converts offsets and areas to arcseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from . import CLASS_NAMES, SDSS_PIXSCALE
from .network import MaskRCNN
from .positions import in_host_mask  # noqa: F401 - re-exported for the pipeline
from .train import resize_image

#: columns of :func:`segment_hosts`, with their dtypes
HOST_COLUMNS = {
    "morph_class": "string",          # 'spiral' | 'elliptical' | <NA>
    "morph_score": "float64",         # class probability of the host detection
    "centroid_dx_pix": "float64",     # r-band mask centroid minus field centre, x (pixels)
    "centroid_dy_pix": "float64",     # same, y (pixels)
    "centroid_offset_pix": "float64",  # hypot(dx, dy) (pixels)
    "centroid_offset_arcsec": "float64",  # offset * pixscale (arcsec)
    "mask_area_pix": "Int64",         # host mask area (pixels of the input image)
    "mask_area_arcsec2": "float64",   # area * pixscale**2 (arcsec^2)
    "morphology_reason": "string",    # <NA> when measured, else why not
}
REASONS = ("bad_shape", "nan_pixels", "blank_image", "no_detection", "no_host_at_centre")


def _detect_fn(model: MaskRCNN):
    fn = getattr(model, "_detect_tf", None)
    if fn is None:
        s = model.cfg.image_size
        fn = tf.function(model.detect, input_signature=[
            tf.TensorSpec([None, s, s, 3], tf.float32)], reduce_retracing=True)
        model._detect_tf = fn
    return fn


def _as_float(images) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype == np.uint8:
        return x.astype(np.float32)
    x = x.astype(np.float32)
    finite = x[np.isfinite(x)]
    if finite.size and finite.max() <= 1.0:
        x = x * 255.0
    return x


def _paste_weights(n_out: int, start: float, length: float, m: int) -> np.ndarray:
    """Bilinear weights (n_out, m) of pixel centres ``0.5 .. n_out - 0.5`` on the m cells
    of ``[start, start + length)``, cell ``k`` centred at ``start + (k + 0.5) length / m``;
    beyond the outer cell centres the mask fades to zero over half a cell (zero padding,
    as Detectron2's ``paste_masks_in_image``)."""
    u = (np.arange(n_out) + 0.5 - start) * (m / max(length, 1e-6)) - 0.5 + 1.0
    i0 = np.floor(u).astype(int)
    t = u - i0
    wts = np.zeros((n_out, m + 2))
    rows = np.arange(n_out)
    for idx, wt in ((i0, 1.0 - t), (i0 + 1, t)):
        ok = (idx >= 0) & (idx < m + 2)
        wts[rows[ok], idx[ok]] = wt[ok]
    return wts[:, 1:-1]


def paste_mask(mask28: np.ndarray, box: np.ndarray, shape: tuple,
               threshold: float = 0.5) -> np.ndarray:
    """Place an m x m mask probability map into its box of an image of ``shape``.

    Parameters
    ----------
    mask28 : ndarray (m, m)
        Mask probabilities; cell ``k`` is centred at ``y1 + (k + 0.5) (y2 - y1) / m``
        (the sampling of :func:`~catclean.morphology.network.crop_boxes`).
    box : ndarray (4,)
        ``(y1, x1, y2, x2)`` pixel-edge box (pixel ``i`` covers ``[i, i + 1)``), float.
    shape : tuple
        ``(H, W)`` of the image.
    threshold : float
        Probability at which a pixel belongs to the mask.

    Returns
    -------
    ndarray (H, W) bool
        The mask bilinearly resampled at every pixel centre (exact inverse of the
        training crop, no rounding of the box to whole pixels).
    """
    out = np.zeros(shape, bool)
    m = np.asarray(mask28, np.float64)
    y1, x1, y2, x2 = (float(v) for v in box)
    if not (y2 > y1 and x2 > x1) or not np.all(np.isfinite(box)):
        return out
    # only pixels within one cell of the box can be non-zero
    cy, cx = (y2 - y1) / m.shape[0], (x2 - x1) / m.shape[1]
    r0, r1 = max(int(np.floor(y1 - cy)), 0), min(int(np.ceil(y2 + cy)), shape[0])
    c0, c1 = max(int(np.floor(x1 - cx)), 0), min(int(np.ceil(x2 + cx)), shape[1])
    if r1 <= r0 or c1 <= c0:
        return out
    wy = _paste_weights(r1 - r0, y1 - r0, y2 - y1, m.shape[0])
    wx = _paste_weights(c1 - c0, x1 - c0, x2 - x1, m.shape[1])
    out[r0:r1, c0:c1] = (wy @ m @ wx.T) >= threshold
    return out


def predict(model: MaskRCNN, images, batch_size: int = 16, min_score: float = 0.0,
            with_masks: bool = True) -> list:
    """Detections for every field.

    Parameters
    ----------
    model : MaskRCNN
    images : array (N, H, W, 3)
        Finite fields (check with :func:`segment_hosts` for untrusted input).
    batch_size : int
        Fields per network call.
    min_score : float
        Drop detections below this score (on top of ``cfg.detection_min_confidence``).
    with_masks : bool
        Paste full-resolution masks (set False for speed when only boxes are needed).

    Returns
    -------
    list of dict
        Per field: ``boxes`` (D, 4) pixels of the input image ``(y1, x1, y2, x2)``,
        ``scores`` (D,), ``classes`` (D,) (1 spiral, 2 elliptical), ``masks`` (D, H, W)
        bool, sorted by decreasing score.
    """
    x = _as_float(images)
    n, h, w = x.shape[:3]
    s = model.cfg.image_size
    fn = _detect_fn(model)
    out = []
    for b0 in range(0, n, batch_size):
        xb = np.stack([resize_image(im, s) for im in x[b0:b0 + batch_size]])
        det = {k: v.numpy() for k, v in fn(tf.constant(xb, tf.float32)).items()}
        for i in range(len(xb)):
            k = int(det["num"][i])
            keep = det["scores"][i, :k] >= min_score
            boxes = det["boxes"][i, :k][keep] * np.array([h, w, h, w], np.float32)
            rec = {"boxes": boxes, "scores": det["scores"][i, :k][keep],
                   "classes": det["classes"][i, :k][keep].astype(int)}
            if with_masks:
                rec["masks"] = np.array([paste_mask(m, bx, (h, w)) for m, bx in
                                         zip(det["masks"][i, :k][keep], boxes)]
                                        ).reshape(-1, h, w)
            out.append(rec)
    return out


def host_detection(pred: dict, shape: tuple, min_score: float = 0.5):
    """Index of the host detection of a field, or ``(None, reason)``.

    The host is the highest-scoring detection (score >= ``min_score``) whose mask
    covers the central pixel; failing that, whose box covers it.
    """
    scores = np.asarray(pred["scores"])
    ok = np.flatnonzero(scores >= min_score)
    if ok.size == 0:
        return None, "no_detection"
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    iy, ix = int(round(cy)), int(round(cx))
    order = ok[np.argsort(-scores[ok], kind="stable")]
    if "masks" in pred and len(pred["masks"]):
        for j in order:
            if pred["masks"][j][iy, ix]:
                return int(j), None
    for j in order:
        y1, x1, y2, x2 = pred["boxes"][j]
        if y1 <= cy <= y2 and x1 <= cx <= x2:
            return int(j), None
    return None, "no_host_at_centre"


def segment_hosts(model: MaskRCNN, images, pixscale: float = SDSS_PIXSCALE,
                  min_score: float = 0.5, batch_size: int = 16,
                  with_detections: bool = False):
    """Class, score, mask and mask centroid of the host galaxy at the centre of each field.

    Parameters
    ----------
    model : MaskRCNN
    images : array (N, H, W, 3)
        uint8 or float gri colour fields centred on the hosts.
    pixscale : float
        arcsec / pixel of the fields (for the arcsec columns).
    min_score : float
        Lowest detection score accepted as a host.
    batch_size : int
    with_detections : bool
        Also return every field's detections (:func:`predict` records; None for fields
        that were not run).

    Returns
    -------
    table : pandas.DataFrame
        One row per field, columns :data:`HOST_COLUMNS`. ``morphology_reason`` is null
        when the host was measured, else one of ``bad_shape``, ``nan_pixels``,
        ``blank_image`` (constant field), ``no_detection`` (nothing above
        ``min_score``), ``no_host_at_centre`` (detections, none covering the centre).
    masks : ndarray (N, H, W) bool
        Host masks (all False for flagged rows).
    detections : list of dict or None
        Only with ``with_detections``.

    Notes
    -----
    Never raises on bad pixels: such fields get a reason and null measurements. The
    centroid is ``scipy.ndimage.center_of_mass`` of the G (r-band) channel inside the
    mask, relative to the field centre ((W - 1) / 2, (H - 1) / 2) (paper Sec. 5.4).
    """
    arr = np.asarray(images)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    n = arr.shape[0] if arr.ndim >= 1 else 0
    rows = [{"morph_class": None, "morph_score": np.nan, "centroid_dx_pix": np.nan,
             "centroid_dy_pix": np.nan, "centroid_offset_pix": np.nan,
             "centroid_offset_arcsec": np.nan, "mask_area_pix": None,
             "mask_area_arcsec2": np.nan, "morphology_reason": None} for _ in range(n)]
    if arr.ndim != 4 or arr.shape[-1] != 3 or min(arr.shape[1:3], default=0) < 8:
        for r in rows:
            r["morphology_reason"] = "bad_shape"
        shape = arr.shape[1:3] if arr.ndim == 4 else (0, 0)
        out = (_table(rows), np.zeros((n,) + tuple(shape), bool))
        return out + ([None] * n,) if with_detections else out
    h, w = arr.shape[1:3]
    masks = np.zeros((n, h, w), bool)
    x = _as_float(arr)
    good = []
    detections = [None] * n
    for i in range(n):
        if not np.all(np.isfinite(x[i])):
            rows[i]["morphology_reason"] = "nan_pixels"
        elif np.ptp(x[i]) == 0:
            rows[i]["morphology_reason"] = "blank_image"
        else:
            good.append(i)
    if good:
        preds = predict(model, x[good], batch_size=batch_size, min_score=0.0)
        for i, pred in zip(good, preds):
            detections[i] = pred
            j, reason = host_detection(pred, (h, w), min_score)
            if j is None:
                rows[i]["morphology_reason"] = reason
                continue
            m = pred["masks"][j]
            masks[i] = m
            r = rows[i]
            r["morph_class"] = CLASS_NAMES[int(pred["classes"][j])]
            r["morph_score"] = float(pred["scores"][j])
            r["mask_area_pix"] = int(m.sum())
            r["mask_area_arcsec2"] = float(m.sum()) * pixscale ** 2
            wgt = x[i, ..., 1] * m
            if wgt.sum() > 0:
                yy, xx = np.indices((h, w))
                cx = float((wgt * xx).sum() / wgt.sum())
                cy = float((wgt * yy).sum() / wgt.sum())
                r["centroid_dx_pix"] = cx - (w - 1) / 2.0
                r["centroid_dy_pix"] = cy - (h - 1) / 2.0
                r["centroid_offset_pix"] = float(np.hypot(r["centroid_dx_pix"],
                                                          r["centroid_dy_pix"]))
                r["centroid_offset_arcsec"] = r["centroid_offset_pix"] * pixscale
    if with_detections:
        return _table(rows), masks, detections
    return _table(rows), masks


def _table(rows: list) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(HOST_COLUMNS))
    return df.astype(HOST_COLUMNS)
