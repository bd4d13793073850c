"""Evaluation of the morphology network (paper 003, Sec. 5) and a trivial baseline.

* :func:`mean_average_precision` -- mAP at IoU 0.5 over spiral and elliptical (VOC
  all-point interpolation; box or mask IoU), with the precision-recall curves.
* :func:`classification_table` -- Table 3: per class TP, TN, FP, FN, accuracy, error
  rate, precision, recall, F1 for the central galaxy of each field.
* :func:`centroid_offsets`, :func:`robust_stats` -- Sec. 5.4 / Table 4: centroids from
  the predicted masks with ``scipy.ndimage.center_of_mass`` on the r-band channel (the
  JPEG's G channel), median and MAD.
* :func:`add_chroma_noise` -- Sec. 5.3: Gaussian chroma noise of scale 12.75 ... 76.5
  (JPEG units) added to every channel independently.
* :func:`baseline_predict` -- the trivial baseline: one detection at the brightest sep
  blob, its segmentation as mask, class from the concentration r90 / r50.

Predictions and ground truths are lists (one entry per field) of dicts with ``boxes``
(D, 4) pixels ``(y1, x1, y2, x2)``, ``classes`` (D,) (1 spiral, 2 elliptical), ``scores``
(D,) (predictions only) and optionally ``masks`` (D, H, W) bool.
"""

from __future__ import annotations

import numpy as np
import sep
from scipy import ndimage

from .anchors import box_iou, mask_to_box
from .masks import mask_iou

CLASSES = (1, 2)
NOISE_SCALES = (12.75, 25.5, 51.0, 76.5)


def _ious(pred: dict, gt: dict, iou_type: str) -> np.ndarray:
    if iou_type == "mask":
        pm = np.asarray(pred["masks"], bool).reshape(len(pred["scores"]), -1)
        gm = np.asarray(gt["masks"], bool).reshape(len(gt["classes"]), -1)
        inter = pm.astype(np.float64) @ gm.T.astype(np.float64)
        union = pm.sum(1)[:, None] + gm.sum(1)[None, :] - inter
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return box_iou(pred["boxes"], gt["boxes"])


def average_precision(preds: list, gts: list, cls: int, iou_threshold: float = 0.5,
                      iou_type: str = "box") -> dict:
    """AP of one class over a set of fields (greedy matching in score order).

    Returns
    -------
    dict
        ``ap`` (float, nan when the class has no ground truth), ``precision``,
        ``recall``, ``scores`` arrays of the PR curve, ``n_gt``.
    """
    records = []  # (score, is_tp)
    n_gt = 0
    for pred, gt in zip(preds, gts):
        gsel = np.flatnonzero(np.asarray(gt["classes"]) == cls)
        psel = np.flatnonzero(np.asarray(pred["classes"]) == cls)
        n_gt += len(gsel)
        if len(psel) == 0:
            continue
        order = psel[np.argsort(-np.asarray(pred["scores"])[psel], kind="stable")]
        if len(gsel):
            sub_p = {k: np.asarray(v)[order] for k, v in pred.items() if k in
                     ("boxes", "scores", "masks")}
            sub_g = {"boxes": np.asarray(gt["boxes"])[gsel],
                     "classes": np.asarray(gt["classes"])[gsel]}
            if iou_type == "mask":
                sub_g["masks"] = np.asarray(gt["masks"])[gsel]
            iou = _ious(sub_p, sub_g, iou_type)
        used = np.zeros(len(gsel), bool)
        for j, p in enumerate(order):
            tp = False
            if len(gsel):
                cand = np.where(used, -1.0, iou[j])
                k = int(np.argmax(cand))
                if cand[k] >= iou_threshold:
                    used[k] = True
                    tp = True
            records.append((float(pred["scores"][p]), tp))
    if n_gt == 0:
        return {"ap": float("nan"), "precision": np.array([]), "recall": np.array([]),
                "scores": np.array([]), "n_gt": 0}
    if not records:
        return {"ap": 0.0, "precision": np.array([]), "recall": np.array([]),
                "scores": np.array([]), "n_gt": n_gt}
    rec = sorted(records, key=lambda r: -r[0])
    tp = np.cumsum([r[1] for r in rec])
    fp = np.cumsum([not r[1] for r in rec])
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, 1)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    ap = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    return {"ap": ap, "precision": precision, "recall": recall,
            "scores": np.array([r[0] for r in rec]), "n_gt": n_gt}


def mean_average_precision(preds: list, gts: list, iou_threshold: float = 0.5,
                           iou_type: str = "box", classes=CLASSES) -> dict:
    """mAP over ``classes`` (Sec. 5, paper: 0.93 on SDSS / Galaxy Zoo).

    Returns
    -------
    dict
        ``map`` and ``per_class`` {class: :func:`average_precision` result}.
    """
    per = {c: average_precision(preds, gts, c, iou_threshold, iou_type) for c in classes}
    aps = [v["ap"] for v in per.values() if np.isfinite(v["ap"])]
    return {"map": float(np.mean(aps)) if aps else float("nan"), "per_class": per}


def classification_table(true_classes, pred_classes, classes=CLASSES) -> dict:
    """Table 3 statistics, one-vs-rest per class.

    ``pred_classes`` may contain 0 (no central detection): a miss for the true class and
    a negative for the others.

    Returns
    -------
    dict
        {class: {TP, TN, FP, FN, accuracy, error_rate, precision, recall, f1}} plus
        ``overall_accuracy`` (fraction of fields whose class is right).
    """
    t = np.asarray(true_classes)
    p = np.asarray(pred_classes)
    out: dict = {}
    for c in classes:
        tp = int(np.sum((t == c) & (p == c)))
        tn = int(np.sum((t != c) & (p != c)))
        fp = int(np.sum((t != c) & (p == c)))
        fn = int(np.sum((t == c) & (p != c)))
        n = max(tp + tn + fp + fn, 1)
        prec = tp / (tp + fp) if tp + fp else float("nan")
        rec = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if tp else 0.0
        out[c] = {"TP": tp, "TN": tn, "FP": fp, "FN": fn, "accuracy": (tp + tn) / n,
                  "error_rate": (fp + fn) / n, "precision": prec, "recall": rec, "f1": f1}
    out["overall_accuracy"] = float(np.mean(t == p)) if len(t) else float("nan")
    return out


def centroid_offsets(images, masks, centres) -> np.ndarray:
    """Mask centroids minus true centres (Sec. 5.4), pixels.

    Parameters
    ----------
    images : ndarray (N, H, W, 3)
        JPEG fields; the r band is the G channel.
    masks : ndarray (N, H, W) bool
        Predicted host masks (empty -> nan offsets).
    centres : ndarray (N, 2)
        True (x, y) centres (0-indexed pixels).

    Returns
    -------
    ndarray (N, 2)
        (dx, dy) in pixels.
    """
    out = np.full((len(images), 2), np.nan)
    for i, (img, m) in enumerate(zip(images, masks)):
        if not np.any(m):
            continue
        w = np.asarray(img[..., 1], np.float64) * m
        if w.sum() <= 0:
            continue
        cy, cx = ndimage.center_of_mass(w)
        out[i] = (cx - centres[i][0], cy - centres[i][1])
    return out


def robust_stats(x) -> dict:
    """Median and MAD (median absolute deviation, unscaled, Table 4) ignoring nans."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"median": float("nan"), "mad": float("nan"), "n": 0}
    med = float(np.median(x))
    return {"median": med, "mad": float(np.median(np.abs(x - med))), "n": int(x.size)}


def add_chroma_noise(images, scale: float, seed: int = 0) -> np.ndarray:
    """Images plus Gaussian noise of standard deviation ``scale`` (JPEG units, every
    channel independently -- chroma noise, Sec. 5.3, Fig. 18), clipped to 0..255 uint8."""
    rng = np.random.default_rng(seed)
    x = np.asarray(images, np.float64) + rng.normal(0.0, scale, np.shape(images))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def ground_truth(fields: dict, mask_source: str = "otsu") -> list:
    """Per-field ground-truth dicts (one central instance) from simulated fields."""
    key = "otsu_masks" if mask_source == "otsu" else "truth_masks"
    out = []
    for cls, m in zip(fields["classes"], fields[key]):
        box = mask_to_box(m)
        ok = box[2] > box[0]
        out.append({"boxes": box[None] if ok else np.zeros((0, 4), np.float32),
                    "classes": np.array([cls]) if ok else np.zeros(0, int),
                    "masks": m[None] if ok else np.zeros((0,) + m.shape, bool)})
    return out


# ------------------------------------------------------------------ trivial baseline
def _blob(image: np.ndarray):
    data = np.ascontiguousarray(np.asarray(image, np.float64)[..., 1])
    bkg = sep.Background(data, bw=64, bh=64)
    sub = data - bkg.back()
    try:
        objs, seg = sep.extract(sub, 1.5, err=bkg.globalrms, minarea=10,
                                segmentation_map=True)
    except Exception:  # sep raises on pathological inputs (e.g. too many pixels)
        return None
    if len(objs) == 0:
        return None
    k = int(np.argmax(objs["flux"]))
    r, _ = sep.flux_radius(sub, objs["x"][k:k + 1], objs["y"][k:k + 1],
                           np.array([6.0 * max(objs["a"][k], 1.0)]), [0.5, 0.9],
                           normflux=objs["flux"][k:k + 1], subpix=5)
    conc = float(r[0, 1] / r[0, 0]) if r[0, 0] > 0 else float("nan")
    return seg == k + 1, conc


def concentration(images) -> np.ndarray:
    """r90 / r50 of the brightest sep blob of each field (nan when none)."""
    out = []
    for img in images:
        b = _blob(img)
        out.append(np.nan if b is None else b[1])
    return np.array(out)


def fit_concentration_threshold(images, classes) -> float:
    """Concentration cut between spirals (below) and ellipticals (above) that maximises
    the accuracy on labelled training fields."""
    c = concentration(images)
    ok = np.isfinite(c)
    c, y = c[ok], np.asarray(classes)[ok]
    best, thr = -1.0, 2.6
    for t in np.unique(c):
        acc = np.mean(np.where(c > t, 2, 1) == y)
        if acc > best:
            best, thr = acc, float(t)
    return thr


def baseline_predict(images, threshold: float) -> list:
    """Trivial baseline: the brightest sep blob (r-band channel) as the only detection.

    Its box and mask are the blob's segmentation; its class is elliptical when the
    concentration r90 / r50 exceeds ``threshold`` (:func:`fit_concentration_threshold`);
    its score grows with the distance of the concentration from the threshold.
    """
    preds = []
    for img in images:
        b = _blob(img)
        h, w = np.shape(img)[:2]
        if b is None or not np.isfinite(b[1]):
            preds.append({"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                          "classes": np.zeros(0, int), "masks": np.zeros((0, h, w), bool)})
            continue
        m, conc = b
        preds.append({"boxes": mask_to_box(m)[None],
                      "scores": np.array([0.5 + 0.5 * np.tanh(abs(conc - threshold) / 0.3)]),
                      "classes": np.array([2 if conc > threshold else 1]),
                      "masks": m[None]})
    return preds


def mask_ious(pred_masks, true_masks) -> np.ndarray:
    """Per-field IoU of predicted host masks with reference masks (nan if both empty)."""
    return np.array([mask_iou(a, b) for a, b in zip(pred_masks, true_masks)])
