"""Small helpers shared by the ``scripts/qa_*.py`` rule scripts."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pandas as pd


def script_logger(log_path: str, name: str = "catclean.qa") -> logging.Logger:
    """Send logging (and Python warnings / stderr) of a rule script to its ``log:`` file."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=log_path, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - TF/absl write to stderr
    return logging.getLogger(name)


def read_many(paths) -> pd.DataFrame:
    """Concatenate Parquet files (skipping empty ones)."""
    from catclean.io import read_parquet

    tabs = [read_parquet(p) for p in paths]
    tabs = [t for t in tabs if len(t)]
    return pd.concat(tabs, ignore_index=True) if tabs else pd.DataFrame()


def load_reps(paths) -> dict:
    """Concatenate representative-image ``.npz`` files."""
    import numpy as np

    parts = [dict(np.load(p, allow_pickle=False)) for p in paths]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
