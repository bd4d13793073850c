"""Matplotlib analogues of paper 002 Fig. 5-8 and 12 (report PNGs)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .metrics import DMAG_BINS, summarize  # noqa: E402

LABEL = {"blend2flux": "blend2flux", "blend2mask2flux": "blend2mask2flux",
         "sep": "sep (SExtractor baseline)"}
COLOR = {"blend2flux": "k", "blend2mask2flux": "tab:red", "sep": "tab:blue"}


def _methods(df):
    return [m for m in ("blend2flux", "blend2mask2flux", "sep") if m in set(df["method"])]


def _panel(ax, g, title):
    ok = np.isfinite(g["mag_pred"])
    ax.scatter(g["mag_iso"][ok], g["mag_pred"][ok], s=3, alpha=0.4, color="k", lw=0)
    lo, hi = np.nanpercentile(g["mag_iso"], [0.5, 99.5]) if len(g) else (16, 22)
    ax.plot([lo - 0.5, hi + 0.5], [lo - 0.5, hi + 0.5], "--", color="tab:orange", lw=1)
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.set_ylim(lo - 1.5, hi + 1.5)
    s = summarize(g["mag_pred"], g["mag_iso"], g["flux_pred"], g["flux_iso"])
    ax.text(0.03, 0.97, f"bias {s['bias']:+.3f}\nscatter {s['scatter']:.3f}\n"
            f"outliers {100 * s['outlier_frac']:.1f}%\nflux MAPE {s['mape']:.1f}%\n"
            f"n={s['n_measured']}/{s['n']}", transform=ax.transAxes, va="top", fontsize=7)
    ins = ax.inset_axes([0.6, 0.08, 0.37, 0.3])
    d = (g["mag_pred"] - g["mag_iso"])[ok]
    ins.hist(np.clip(d, -1.5, 1.5), bins=40, range=(-1.5, 1.5), color=COLOR.get(
        g["method"].iloc[0] if len(g) else "sep", "k"))
    ins.set_yticks([])
    ins.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)


def fig5(df: pd.DataFrame, path) -> None:
    """Fig. 5: mag_blend vs mag_isolated; rows central / companion, where sep found it."""
    methods = _methods(df)
    sep = df[df["method"] == "sep"].set_index(["blend", "role"])["mag_pred"]
    fig, axes = plt.subplots(2, len(methods), figsize=(3.2 * len(methods), 6.2), squeeze=False)
    for r, role in enumerate(("central", "companion")):
        found = sep.xs(role, level="role")
        found = set(found.index[np.isfinite(found.to_numpy())])
        for c, m in enumerate(methods):
            g = df[(df["method"] == m) & (df["role"] == role) & df["blend"].isin(found)]
            _panel(axes[r, c], g, f"{LABEL[m]} - {role}")
            axes[r, c].set_xlabel("isolated mag")
            axes[r, c].set_ylabel("blend mag")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig6(df: pd.DataFrame, path) -> None:
    """Fig. 6: both galaxies; rows: sep found exactly two / under- or over-deblended."""
    methods = _methods(df)
    fig, axes = plt.subplots(2, len(methods), figsize=(3.2 * len(methods), 6.2), squeeze=False)
    for r, (name, sel) in enumerate((("sep found two", df["case"] == "two"),
                                     ("sep under/over-deblended", df["case"] != "two"))):
        for c, m in enumerate(methods):
            _panel(axes[r, c], df[sel & (df["method"] == m)], f"{LABEL[m]} - {name}")
            axes[r, c].set_xlabel("isolated mag")
            axes[r, c].set_ylabel("blend mag")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig7(df: pd.DataFrame, path) -> None:
    """Fig. 7: dmag vs pair magnitude difference, box 25-75 %, whiskers 5-95 %."""
    methods = _methods(df)
    edges = np.array(DMAG_BINS)
    mids = 0.5 * (edges[1:] + edges[:-1])
    fig, axes = plt.subplots(2, len(methods), figsize=(3.2 * len(methods), 6), squeeze=False,
                             sharey=True)
    for r, role in enumerate(("central", "companion")):
        for c, m in enumerate(methods):
            g = df[(df["method"] == m) & (df["role"] == role)]
            data = []
            for lo, hi in zip(edges[:-1], edges[1:]):
                d = g.loc[(g["dmag_pair"] >= lo) & (g["dmag_pair"] < hi), "dmag"].to_numpy()
                data.append(d[np.isfinite(d)] if np.isfinite(d).any() else np.array([np.nan]))
            ax = axes[r, c]
            ax.boxplot(data, positions=mids, widths=0.8 * np.diff(edges), whis=(5, 95),
                       showfliers=False, manage_ticks=False)
            ok = np.isfinite(g["dmag"])
            sc = ax.scatter(g["dmag_pair"][ok], g["dmag"][ok], c=g["sep_over_Rcen"][ok], s=2,
                            alpha=0.3, cmap="viridis", vmin=0, vmax=8)
            ax.axhline(0, color="tab:orange", lw=1, ls="--")
            ax.set_ylim(-1.5, 1.5)
            ax.set_title(f"{LABEL[m]} - {role}", fontsize=8)
            ax.set_xlabel("mag_central - mag_companion")
            ax.set_ylabel("dmag (blend - isolated)")
    fig.colorbar(sc, ax=axes, label="separation / R_cen", shrink=0.6)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig8(tables: dict, path) -> None:
    """Fig. 8: bias (solid) and scatter (dotted) vs pair mag difference, central galaxy."""
    t = tables["dmag_bin"]
    t = t[t["role"] == "central"].copy()
    t["lo"] = t["dmag_bin"].str.extract(r"\(?\[?(-?[\d.]+),")[0].astype(float)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax2 = ax.twinx()
    for m, g in t.groupby("method"):
        g = g.sort_values("lo")
        x = g["lo"].to_numpy()
        ax.plot(x, g["bias"], "-o", color=COLOR.get(m, "k"), ms=3, label=LABEL.get(m, m))
        ax2.plot(x, g["scatter"], ":s", color=COLOR.get(m, "k"), ms=3)
    ax.set_xlabel("mag_central - mag_companion (bin lower edge)")
    ax.set_ylabel("bias (solid)")
    ax2.set_ylabel("scatter (dotted)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_iou(ious: dict, morph: np.ndarray, morph_names, path) -> None:
    """Fig. 12: IoU histograms and mean IoU per morphology, U-Net vs blend2mask2flux."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.4))
    names = [k for k in ("unet", "blend2mask2flux") if k in ious]
    for k, col in zip(names, ("tab:blue", "tab:orange")):
        v = ious[k].ravel()
        a.hist(v[np.isfinite(v)], bins=30, range=(0, 1), alpha=0.6, color=col,
               label=f"{k} (mean {np.nanmean(v):.2f})")
    a.set_xlabel("IoU")
    a.legend(fontsize=7)
    y = np.arange(len(morph_names))
    for i, (k, col) in enumerate(zip(names, ("tab:blue", "tab:orange"))):
        vals = [np.nanmean(ious[k][morph == j]) if (morph == j).any() else np.nan
                for j in range(len(morph_names))]
        b.barh(y + 0.4 * i, vals, height=0.4, color=col, label=k)
    b.set_yticks(y + 0.2, morph_names)
    b.set_xlabel("mean IoU")
    b.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def examples(test: dict, path, n: int = 8) -> None:
    """A few test blends (asinh stretch) with their two true masks outlined."""
    n = min(n, len(test["images"]))
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 1.8), squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        img = test["images"][i]
        ax.imshow(np.arcsinh(img / 0.02), origin="lower", cmap="gray")
        for j, col in enumerate(("tab:red", "tab:cyan")):
            ax.contour(test["masks"][i, ..., j], levels=[0.5], colors=col, linewidths=0.6)
        ax.set_title(f"dm={test['mag'][i, 0] - test['mag'][i, 1]:+.1f}", fontsize=6)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
