"""Figures of the morphology stage (matplotlib, Agg): paper 003 Fig. 16, 17, 18 analogues
and the precision-recall curve of Sec. 5."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import CLASS_NAMES  # noqa: E402

COLOURS = {1: "tab:cyan", 2: "tab:orange"}


def plot_detections(images, preds, path, truth_classes=None, max_fields: int = 8,
                    min_score: float = 0.5):
    """Fields with boxes, mask contours, class and score (Fig. 17 analogue)."""
    n = min(max_fields, len(images))
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes.ravel()[i]
        ax.imshow(images[i], origin="upper")
        p = preds[i]
        for j in np.flatnonzero(np.asarray(p["scores"]) >= min_score):
            c = int(p["classes"][j])
            y1, x1, y2, x2 = p["boxes"][j]
            ax.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                       color=COLOURS.get(c, "w"), lw=1))
            if "masks" in p and len(p["masks"]):
                ax.contour(p["masks"][j], levels=[0.5], colors=COLOURS.get(c, "w"),
                           linewidths=0.8)
            ax.text(x1, y1 - 2, f"{CLASS_NAMES[c]} {p['scores'][j]:.2f}", color="w",
                    fontsize=7, va="bottom")
        if truth_classes is not None:
            ax.set_title(f"truth: {CLASS_NAMES[int(truth_classes[i])]}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_precision_recall(map_result: dict, path, baseline: dict | None = None):
    """Precision-recall curves per class from :func:`metrics.mean_average_precision`."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for c, res in map_result["per_class"].items():
        if len(res["recall"]):
            ax.plot(res["recall"], res["precision"], color=COLOURS[c],
                    label=f"{CLASS_NAMES[c]} AP={res['ap']:.2f}")
    if baseline is not None:
        for c, res in baseline["per_class"].items():
            if len(res["recall"]):
                ax.plot(res["recall"], res["precision"], color=COLOURS[c], ls="--",
                        label=f"baseline {CLASS_NAMES[c]} AP={res['ap']:.2f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"IoU 0.5, mAP = {map_result['map']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_centroid_offsets(offsets, path, pixscale: float | None = None):
    """Histograms of the x and y mask-centroid offsets (Fig. 16 analogue), pixels."""
    off = np.asarray(offsets, np.float64)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3))
    for k, (ax, lab) in enumerate(zip(axes, ("x", "y"))):
        v = off[:, k][np.isfinite(off[:, k])]
        if v.size:
            med = np.median(v)
            mad = np.median(np.abs(v - med))
            ax.hist(v, bins=30, color="0.4")
            ax.axvline(med, color="r", lw=1)
            txt = f"median {med:.2f} px, MAD {mad:.2f} px"
            if pixscale:
                txt += f"\n({med * pixscale:.2f}\")"
            ax.set_title(txt, fontsize=8)
        ax.set_xlabel(f"{lab} centroid - true centre (pixels)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_accuracy_vs_noise(scales, accuracies, path, baseline=None):
    """Classification accuracy against chroma-noise scale (Sec. 5.3, Fig. 18)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(scales, accuracies, "o-", label="Mask R-CNN")
    if baseline is not None:
        ax.plot(scales, baseline, "s--", label="baseline")
    ax.set_xlabel("Gaussian chroma noise scale (JPEG units)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
