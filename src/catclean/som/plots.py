"""SOM figures (matplotlib, Agg): prototype grid (paper 004 Fig. 6), hit map (Fig. 7),
annotation map (per-neuron ``p_shred``, Sec. 8.2)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .core import SOM  # noqa: E402


def neuron_xy(som: SOM) -> np.ndarray:
    """Plot centre of each neuron, (N, 2): cartesian (col, row); hexagonal offset rows."""
    pos = som.positions.astype(float)
    if som.settings.layout == "hexagonal":
        rad = (som.settings.rows - 1) / 2
        x = pos[:, 1] + (pos[:, 0] - rad) / 2
        return np.stack([x, pos[:, 0] * math.sqrt(3) / 2], axis=1)
    return np.stack([pos[:, 1], pos[:, 0]], axis=1)


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def plot_prototypes(som: SOM, path=None, channel: int = 0, crop: bool = True, cmap="magma"):
    """Neuron grid of prototype images (paper 004 Fig. 6).

    Parameters
    ----------
    som : SOM
    path : path-like, optional
        Where to save (PNG/PDF by suffix).
    channel : int
        Channel to show.
    crop : bool
        Show only the central image-sized part of each neuron.

    Returns
    -------
    matplotlib.figure.Figure
    """
    w = som.weights[:, channel]
    if crop and som.image_dim < w.shape[-1]:
        b = (w.shape[-1] - som.image_dim) // 2
        w = w[:, b : b + som.image_dim, b : b + som.image_dim]
    xy = neuron_xy(som)
    fig, ax = plt.subplots(figsize=(0.9 * som.settings.cols + 1, 0.9 * som.settings.rows + 1))
    vmax = float(np.nanmax(w)) or 1.0
    for (x, y), img in zip(xy, w):
        ax.imshow(
            img, extent=(x - 0.48, x + 0.48, y + 0.48, y - 0.48), cmap=cmap, vmin=0, vmax=vmax
        )
    ax.set_xlim(xy[:, 0].min() - 0.6, xy[:, 0].max() + 0.6)
    ax.set_ylim(xy[:, 1].max() + 0.6, xy[:, 1].min() - 0.6)
    ax.set_xlabel("SOM column")
    ax.set_ylabel("SOM row")
    ax.set_title(f"SOM prototypes ({som.settings.rows}x{som.settings.cols}, channel {channel})")
    return _save(fig, path)


def _value_map(
    som: SOM, values, title: str, label: str, path, cmap, vmin=None, vmax=None, fmt="{:.0f}"
):
    xy = neuron_xy(som)
    hexa = som.settings.layout == "hexagonal"
    fig, ax = plt.subplots(figsize=(0.6 * som.settings.cols + 2, 0.6 * som.settings.rows + 1))
    sc = ax.scatter(
        xy[:, 0],
        xy[:, 1],
        c=values,
        s=900 if hexa else 700,
        marker="h" if hexa else "s",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        edgecolors="0.6",
    )
    for (x, y), v in zip(xy, values):
        if np.isfinite(v):
            ax.text(x, y, fmt.format(v), ha="center", va="center", fontsize=7)
    ax.set_xlim(xy[:, 0].min() - 0.7, xy[:, 0].max() + 0.7)
    ax.set_ylim(xy[:, 1].max() + 0.7, xy[:, 1].min() - 0.7)
    ax.set_aspect("equal")
    ax.set_xlabel("SOM column")
    ax.set_ylabel("SOM row")
    ax.set_title(title)
    fig.colorbar(sc, ax=ax, label=label)
    return _save(fig, path)


def plot_hit_map(som: SOM, bmu_index, path=None):
    """Number of images whose best-matching neuron is each neuron (paper 004 Fig. 7).

    Parameters
    ----------
    bmu_index : array_like of int
        ``MapResult.bmu_index`` (negative entries are ignored).
    """
    b = np.asarray(bmu_index)
    hits = np.bincount(b[b >= 0], minlength=som.n_neurons).astype(float)
    return _value_map(som, hits, "SOM hit map", "images per neuron", path, "viridis")


def plot_annotation_map(som: SOM, neuron_table, path=None, column: str = "p_shred"):
    """Per-neuron annotation (default ``p_shred`` in [0, 1]; NaN = not annotated)."""
    v = np.full(som.n_neurons, np.nan)
    pos = {tuple(rc): i for i, rc in enumerate(som.positions.tolist())}
    for r, c, p in zip(
        neuron_table["som_bmu_row"], neuron_table["som_bmu_col"], neuron_table[column]
    ):
        i = pos.get((int(r), int(c)))
        if i is not None:
            v[i] = p
    return _value_map(
        som, v, f"SOM annotation: {column}", column, path, "coolwarm", 0.0, 1.0, "{:.2f}"
    )
