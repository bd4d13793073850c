"""Per-survey shred statistics for the report (paper 001 Sec. 3.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def summarize(survey: str, shreds: pd.DataFrame, cuts: pd.DataFrame) -> dict:
    """Shred fraction among scored sources and, where ``truth_label`` exists (synthetic
    sky), purity / completeness of ``is_shred`` against true shreds.

    Returns a dict: ``survey, n_sources, n_pass_cuts, n_scored, n_shred, shred_fraction,
    truth_shred_fraction, purity, completeness, reasons`` (counts of null reasons).
    """
    df = shreds.merge(cuts[[c for c in ("source_id", "passes_cuts", "truth_label")
                            if c in cuts]], on="source_id", how="left")
    scored = df["p_shred"].notna()
    is_shred = df["is_shred"].fillna(False).astype(bool) & scored
    out = {"survey": survey, "n_sources": int(len(df)),
           "n_pass_cuts": int(df["passes_cuts"].fillna(False).astype(bool).sum())
           if "passes_cuts" in df else None,
           "n_scored": int(scored.sum()), "n_shred": int(is_shred.sum()),
           "shred_fraction": float(is_shred.sum() / scored.sum()) if scored.any() else None}
    if "truth_label" in df:
        truth = (df["truth_label"].astype(str) == "shred") & scored
        tp = int((truth & is_shred).sum())
        out.update(truth_shred_fraction=float(truth.sum() / scored.sum()) if scored.any()
                   else None,
                   n_truth_shred=int(truth.sum()),
                   purity=float(tp / is_shred.sum()) if is_shred.sum() else None,
                   completeness=float(tp / truth.sum()) if truth.sum() else None)
        lab = df.loc[scored, "truth_label"].astype(str)
        out["scored_truth_labels"] = lab.value_counts().to_dict()
    reasons = df.loc[~scored, "shreds_reason"].astype(str).str.split(":").str[0]
    out["null_reasons"] = {k: int(v) for k, v in reasons.value_counts().items()}
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in out.items()}
