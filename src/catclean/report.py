"""Report products of the catalog stages: the cut-flow table and the sky plot."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

LABEL_COLOURS = {"galaxy": "tab:blue", "shred": "tab:orange", "star": "tab:gray",
                 "blend": "tab:purple", "spurious": "tab:olive", "unknown": "k"}


def cutflow_html(paths: Sequence[str]) -> str:
    """An HTML page with one cut-flow table per survey."""
    parts = ["<html><head><meta charset='utf-8'><title>catclean cut flow</title>",
             "<style>table{border-collapse:collapse;font-family:sans-serif;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
             "td:first-child{text-align:left}</style></head><body>",
             "<h2>Cut flow (rows surviving each cut, cumulative)</h2>"]
    for path in paths:
        flow = pd.read_csv(path)
        survey = flow["survey"].iloc[0] if len(flow) else path
        n0 = max(int(flow["n_surviving"].iloc[0]), 1) if len(flow) else 1
        flow = flow.assign(frac_surviving=(flow["n_surviving"] / n0).round(4))
        parts.append(f"<h3>{html.escape(str(survey))}</h3>")
        parts.append(flow.drop(columns=["survey"]).to_html(index=False, border=0))
    parts.append("</body></html>")
    return "\n".join(parts)


def sky_plot(hosts_path: str, survey_dirs: Sequence[str], out_png: str,
             max_hosts: int = 6) -> None:
    """Hosts and catalog sources coloured by truth label, one panel per survey and host.

    Each panel is centred on a host (black cross) with its association circle (dashed);
    sources passing all cuts are drawn larger with a black edge. ``survey_dirs`` are the
    ``catalog/survey=<s>`` directories of the hive catalog.
    """
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt
    import pyarrow.dataset as ds

    hosts = pd.read_parquet(hosts_path)
    root = str(Path(survey_dirs[0]).parent) if survey_dirs else "."
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=["ra", "dec", "truth_label", "survey", "passes_cuts", "host_nsaid"]
    ).to_pandas()
    surveys = sorted(table["survey"].astype(str).unique()) if len(table) else ["none"]
    ok = hosts[hosts.host_status == "ok"].head(max_hosts)
    ncol = max(len(ok), 1)
    fig, axes = plt.subplots(len(surveys), ncol, figsize=(3.2 * ncol, 3.2 * len(surveys)),
                             squeeze=False)
    for i, survey in enumerate(surveys):
        sub = table[table["survey"].astype(str) == survey]
        labels = sub["truth_label"].astype("string").fillna("unknown")
        passing = sub["passes_cuts"].fillna(False).astype(bool).to_numpy()
        for j, h in enumerate(ok.itertuples()):
            ax = axes[i, j]
            cosd = np.cos(np.radians(h.DEC))
            dx = (sub.ra.to_numpy() - h.RA) * cosd * 60
            dy = (sub.dec.to_numpy() - h.DEC) * 60
            for lab, colour in LABEL_COLOURS.items():
                sel = (labels == lab).to_numpy()
                if sel.any():
                    ax.scatter(dx[sel & ~passing], dy[sel & ~passing], s=3, c=colour, lw=0,
                               alpha=0.6, label=f"{lab} ({int(sel.sum())})" if j == 0 else None)
                    ax.scatter(dx[sel & passing], dy[sel & passing], s=16, c=colour,
                               edgecolors="k", lw=0.6)
            t = np.linspace(0, 2 * np.pi, 100)
            r = h.radius_deg * 60
            ax.plot(r * np.cos(t), r * np.sin(t), "k--", lw=0.6)
            ax.plot(0, 0, "kx", ms=8)
            ax.set_xlim(1.15 * r, -1.15 * r)
            ax.set_ylim(-1.15 * r, 1.15 * r)
            ax.set_aspect("equal")
            ax.set_title(f"{survey} NSAID {h.NSAID} z={h.Z:.3f}", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(surveys) - 1:
                ax.set_xlabel("east offset [arcmin]", fontsize=7)
            if j == 0:
                ax.set_ylabel("north offset [arcmin]", fontsize=7)
                ax.legend(fontsize=6, loc="lower left", markerscale=2)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
