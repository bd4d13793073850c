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


def sky_plot(hosts_path: str, survey_dirs: Sequence[str], out_png: str) -> None:
    """Hosts (crosses and association circles) and sources coloured by truth label.

    ``survey_dirs`` are the ``catalog/survey=<s>`` directories of the hive catalog.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyarrow.dataset as ds

    hosts = pd.read_parquet(hosts_path)
    from pathlib import Path

    root = str(Path(survey_dirs[0]).parent) if survey_dirs else "."
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=["ra", "dec", "truth_label", "survey", "passes_cuts"]).to_pandas()
    surveys = sorted(table["survey"].astype(str).unique()) if len(table) else ["none"]
    fig, axes = plt.subplots(1, len(surveys), figsize=(5.5 * len(surveys), 5), squeeze=False)
    for ax, survey in zip(axes[0], surveys):
        sub = table[table["survey"].astype(str) == survey]
        labels = sub["truth_label"].astype("string").fillna("unknown")
        for lab, colour in LABEL_COLOURS.items():
            sel = labels == lab
            if sel.any():
                ax.scatter(sub.ra[sel], sub.dec[sel], s=3, c=colour,
                           label=f"{lab} ({int(sel.sum())})", alpha=0.7, lw=0)
        ok = hosts[hosts.host_status == "ok"]
        ax.scatter(ok.RA, ok.DEC, marker="x", c="k", s=40, label="hosts")
        for h in ok.itertuples():
            t = np.linspace(0, 2 * np.pi, 100)
            ax.plot(h.RA + h.radius_deg * np.cos(t) / np.cos(np.radians(h.DEC)),
                    h.DEC + h.radius_deg * np.sin(t), "k--", lw=0.5)
        ax.invert_xaxis()
        ax.set_xlabel("RA [deg]")
        ax.set_ylabel("Dec [deg]")
        ax.set_title(f"{survey}: {len(sub)} sources")
        ax.legend(fontsize=7, markerscale=3, loc="best")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
