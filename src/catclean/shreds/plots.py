"""Report figures of the shred stage: ROC (paper 001 Fig. 3), example cutouts per
predicted class (Fig. 4) and the per-survey shred fractions."""

from __future__ import annotations

import numpy as np


def roc_figure(cv: dict, path) -> None:
    """ROC of every fold (thin black) and their mean (thick red) on the held-out test set,
    random guess dashed grey, AUCs in the legend (as paper 001 Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    grid = np.linspace(0, 1, 201)
    tprs = []
    for f in cv["folds"]:
        t = f["test"]
        if t.get("auc") is None:
            continue
        ax.plot(t["roc_fpr"], t["roc_tpr"], color="k", lw=0.7, alpha=0.7)
        tprs.append(np.interp(grid, t["roc_fpr"], t["roc_tpr"]))
    if tprs:
        mean = np.mean(tprs, axis=0)
        mean[0] = 0.0
        auc = cv["mean"]["auc"]
        ax.plot(grid, mean, color="red", lw=2.5,
                label=f"mean of {len(tprs)} folds, AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random guess")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (completeness)")
    acc = cv["mean"]["accuracy"]
    ax.set_title(f"shred CNN, held-out test (n={cv['n_test']}), acc={acc:.3f}", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def examples_figure(images: np.ndarray, p: np.ndarray, truth: np.ndarray | None, path,
                    n: int = 15, seed: int = 0) -> None:
    """Random examples classified as galaxies (left) and shreds (right), 5 x 3 each, a red
    cross at the source centroid and a red frame where the class disagrees with the
    truth label (paper 001 Fig. 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(5, 7, figsize=(9.5, 7))
    for ax in axes.ravel():
        ax.axis("off")
    for side, cls in ((0, 0), (4, 1)):
        sel = np.flatnonzero((p >= 0.5) == bool(cls))
        pick = rng.choice(sel, min(n, len(sel)), replace=False) if len(sel) else []
        axes[0, side + 1].set_title(["classified galaxy", "classified shred"][cls],
                                    fontsize=10)
        for k, i in enumerate(pick):
            ax = axes[k // 3, side + k % 3]
            img = images[i]
            ax.imshow(img, origin="upper")
            c = img.shape[0] / 2 - 0.5
            ax.plot([c], [c], "+", color="red", ms=8, mew=1)
            ax.text(2, 10, f"{p[i]:.2f}", color="w", fontsize=7)
            if truth is not None and int(truth[i]) != cls:
                for s in ax.spines.values():
                    s.set_visible(True)
                    s.set_color("red")
                    s.set_linewidth(2)
                ax.axis("on")
                ax.set_xticks([])
                ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
