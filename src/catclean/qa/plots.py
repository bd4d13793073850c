"""Report plots of the QA stage (paper 000 Fig. 3, 4/6, 5, 9, 11/12)."""

from __future__ import annotations

import numpy as np

from . import CLASS_COLUMNS, CLASSES, FEATURES

PAPER_ACCURACY = {"M1": 0.92, "M2": 0.92, "M3": 0.97}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def som_hitmap(hits: np.ndarray, unit_cluster: np.ndarray, path) -> None:
    """Hit map and the k-means clusters of the units (paper Fig. 3)."""
    plt = _plt()
    rows, cols = hits.shape
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.8))
    im = ax[0].imshow(hits, origin="lower", cmap="viridis")
    fig.colorbar(im, ax=ax[0], label="sources per unit")
    ax[0].set_title(f"SOM hit map ({rows}x{cols}, {int(hits.sum())} sources)")
    cl = unit_cluster.reshape(rows, cols)
    ax[1].imshow(cl, origin="lower", cmap="tab20", vmin=-0.5, vmax=19.5)
    for (i, j), c in np.ndenumerate(cl):
        ax[1].text(j, i, str(c), ha="center", va="center", fontsize=6)
    ax[1].set_title(f"k-means clusters of the units ({cl.max() + 1})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cluster_means(features: np.ndarray, clusters: np.ndarray, n_clusters: int, path) -> None:
    """Mean of each feature per cluster (paper Fig. 5)."""
    plt = _plt()
    labels = ["log10 ISO0 [pix]", "ELLIPTICITY", "BACKGROUND [rms]", "STELLARITY",
              "min(EXPTIME,30)/30"]
    fig, axs = plt.subplots(1, len(FEATURES), figsize=(18, 3.4))
    n = np.bincount(clusters, minlength=n_clusters)
    for j, ax in enumerate(axs):
        s = np.bincount(clusters, weights=features[:, j], minlength=n_clusters)
        m = np.divide(s, n, out=np.full(n_clusters, np.nan), where=n > 0)
        ax.bar(np.arange(n_clusters), m, color="C0")
        ax.set_xlabel("cluster")
        ax.set_title(labels[j], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def roc_curve(y, score, auc: float, path) -> None:
    from sklearn.metrics import roc_curve as _roc

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = _roc(y, score)
        ax.plot(fpr, tpr, label=f"stellarity AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false-positive rate (galaxies)")
    ax.set_ylabel("true-positive rate (stars)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def training_curves(metrics: dict, path) -> None:
    """Train / validation accuracy per epoch of M1, M2, M3 (paper Fig. 9)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, kind in enumerate(("M1", "M2", "M3")):
        h = metrics.get(kind, {}).get("history", {})
        if not h:
            continue
        ep = np.arange(1, len(h["accuracy"]) + 1)
        ax.plot(ep, h["accuracy"], color=f"C{i}", ls="-", label=f"{kind} train")
        ax.plot(ep, h["val_accuracy"], color=f"C{i}", ls="--", label=f"{kind} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy per CCD")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def accuracy_bars(metrics: dict, path) -> None:
    plt = _plt()
    kinds = ["M1", "M2", "M3"]
    x = np.arange(3)
    fig, ax = plt.subplots(figsize=(6, 4))
    ccd = [metrics[k]["test_accuracy_ccd"] for k in kinds]
    exp = [metrics[k]["test_accuracy_exposure"] for k in kinds]
    ax.bar(x - 0.25, ccd, 0.25, label="held-out, per CCD")
    ax.bar(x, exp, 0.25, label="held-out, per exposure")
    ax.bar(x + 0.25, [PAPER_ACCURACY[k] for k in kinds], 0.25, label="paper (validation)",
           color="0.7")
    for xi, v in zip(x, exp):
        ax.text(xi, v + 0.01, f"{v:.2f}", ha="center", fontsize=8)
    ax.set_xticks(x, kinds)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion(cm: np.ndarray, title: str, path) -> None:
    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=30)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fwhm_ellipticity(grades, fwhm_max: float, ell_max: float, path) -> None:
    """log FWHM vs ellipticity of each exposure coloured by each class probability
    (paper Fig. 11 and 12), with the classical good box."""
    plt = _plt()
    g = grades[grades["status"] != "failed"].dropna(subset=["fwhm_arcsec", "ellipticity"])
    fig, axs = plt.subplots(2, 3, figsize=(14, 8.5))
    axs = axs.ravel()
    markers = {c: m for c, m in zip(CLASSES, "o^vsD")}
    ax = axs[0]
    for c in CLASSES:
        s = g[g["true_class"] == c] if "true_class" in g else g.iloc[0:0]
        ax.scatter(s["ellipticity"], np.log10(s["fwhm_arcsec"]), s=14, marker=markers[c], label=c)
    ax.set_title("true class (cf. Fig. 11)")
    ax.legend(fontsize=7)
    for k, (col, cls) in enumerate(zip(CLASS_COLUMNS, CLASSES)):
        ax = axs[k + 1]
        sc = ax.scatter(g["ellipticity"], np.log10(g["fwhm_arcsec"]),
                        c=np.log10(np.clip(g[col], 1e-3, 1)), cmap="RdYlBu", vmin=-3, vmax=0,
                        s=14)
        fig.colorbar(sc, ax=ax, label=f"log10 P({cls})")
        ax.set_title(f"P({cls}) (cf. Fig. 12)")
    for ax in axs:
        ax.axvline(ell_max, color="k", lw=0.6, ls=":")
        ax.axhline(np.log10(fwhm_max), color="k", lw=0.6, ls=":")
        ax.set_xlabel("median ellipticity of bright point sources")
        ax.set_ylabel("log10 median FWHM [arcsec]")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def representative_examples(reps: dict, labels: dict, path, per_class: int = 1) -> None:
    """One representative image (20 stamps) per class with the cluster counts on top
    (paper Fig. 4)."""
    plt = _plt()
    chosen = []
    for c in CLASSES:
        idx = [i for i, e in enumerate(reps["expid"]) if labels.get(e) == c][:per_class]
        chosen += [(c, i) for i in idx]
    if not chosen:
        chosen = [("?", 0)] if len(reps["expid"]) else []
    n_cl = reps["stamps"].shape[1] if len(reps["expid"]) else 20
    fig, axs = plt.subplots(max(len(chosen), 1), n_cl, figsize=(n_cl * 0.9, 1.2 * max(len(chosen), 1)),
                            squeeze=False)
    for r, (c, i) in enumerate(chosen):
        for k in range(n_cl):
            ax = axs[r, k]
            ax.imshow(reps["stamps"][i, k].astype(np.float32), cmap="gray", vmin=-1, vmax=4,
                      origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(str(int(reps["counts"][i, k])), fontsize=6)
            if k == 0:
                ax.set_ylabel(c, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
