"""Neuron annotation and the per-source SOM table (paper 004 Sec. 6.1-6.2 and Sec. 8.2).

Sec. 8.2 estimates, per neuron, the probability ``P_sidelobe`` that a component matched to
it is spurious (counted by eye on 100 members, or option 2: the fraction of labelled
members that are spurious) and gives every catalogue entry the value of its best-matching
neuron. Here the spurious class is a *shred* (a fragment of a larger galaxy):

* :func:`annotate_neurons` - option 2: ``p_shred = n_shred / n_annotated`` per neuron from
  per-image truth labels of mapped images;
* :func:`read_neuron_labels` - a user CSV of neuron labels (option 1, the paper's route);
* :func:`build_source_table` - one row per source with the ``som_*`` and ``p_shred_som``
  columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .core import SOM, MapResult

SOURCE_COLUMNS = (
    "som_bmu_row",
    "som_bmu_col",
    "som_distance",
    "som_transform",
    "som_rotation_deg",
    "som_flip",
    "p_shred_som",
    "som_reason",
)


def _positive(labels, positive) -> tuple[np.ndarray, np.ndarray]:
    """(annotated, is_positive) boolean arrays from bool/str/int labels (None/NaN = unlabelled)."""
    lab = pd.Series(list(labels) if not isinstance(labels, pd.Series) else labels.to_list())
    annotated = lab.notna().to_numpy()
    if lab.dropna().map(lambda v: isinstance(v, bool | np.bool_)).all():
        pos = lab.fillna(False).astype(bool).to_numpy()
    else:
        pos = (lab == positive).to_numpy()
    return annotated, pos & annotated


def annotate_neurons(
    som: SOM,
    result: MapResult,
    labels,
    positive="shred",
    min_annotated: int = 1,
) -> pd.DataFrame:
    """Fraction of annotated members of each neuron that are shreds (paper 004 Sec. 8.2, 2).

    Parameters
    ----------
    som : SOM
    result : MapResult
        Mapping of the labelled images (same order as ``labels``).
    labels : array_like, (n,)
        Per-image truth: bool (True = shred), or values compared with ``positive``;
        None/NaN = not annotated.
    positive : object
        Label value meaning "shred" for non-boolean labels.
    min_annotated : int
        Neurons with fewer annotated members get ``p_shred = NaN``.

    Returns
    -------
    DataFrame, one row per neuron: ``neuron``, ``som_bmu_row``, ``som_bmu_col``,
    ``n_mapped``, ``n_annotated``, ``n_shred`` (int64) and ``p_shred`` (float64 in [0, 1]).
    """
    annotated, pos = _positive(labels, positive)
    if annotated.size != result.bmu_index.size:
        raise ValueError("labels and mapping have different lengths")
    nn = som.n_neurons
    ok = result.mapped
    b = result.bmu_index[ok]
    n_mapped = np.bincount(b, minlength=nn)
    n_ann = np.bincount(b, weights=annotated[ok], minlength=nn).astype(np.int64)
    n_pos = np.bincount(b, weights=pos[ok], minlength=nn).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n_ann >= max(1, min_annotated), n_pos / np.maximum(n_ann, 1), np.nan)
    pos_rc = som.positions
    return pd.DataFrame(
        {
            "neuron": np.arange(nn, dtype=np.int64),
            "som_bmu_row": pos_rc[:, 0],
            "som_bmu_col": pos_rc[:, 1],
            "n_mapped": n_mapped.astype(np.int64),
            "n_annotated": n_ann,
            "n_shred": n_pos,
            "p_shred": p.astype(np.float64),
        }
    )


_ROW_ALIASES = ("som_bmu_row", "row", "bmu_row", "bmu_y", "best_neuron_y", "y")
_COL_ALIASES = ("som_bmu_col", "col", "bmu_col", "bmu_x", "best_neuron_x", "x")
_P_ALIASES = ("p_shred", "p_shred_som", "p", "probability", "p_sidelobe")


def read_neuron_labels(source, positive="shred") -> pd.DataFrame:
    """Neuron annotations from a user CSV (paper 004 Sec. 6.1 text labels, Sec. 8.2 CSV).

    Parameters
    ----------
    source : path or DataFrame
        One row per annotated neuron with a row and a column column (``som_bmu_row`` /
        ``row`` / ``bmu_y``; ``som_bmu_col`` / ``col`` / ``bmu_x``, case-insensitive) and
        either a probability (``p_shred`` / ``p`` / ``P_sidelobe``; values > 1 are read as
        percent, like the paper's ``P_sidelobe``) or a ``label`` column (``positive`` -> 1,
        any other label -> 0).
    positive : object
        Label value meaning "shred".

    Returns
    -------
    DataFrame with ``som_bmu_row``, ``som_bmu_col`` (int64), ``p_shred`` (float64) and the
    ``label`` column when given.
    """
    df = source.copy() if isinstance(source, pd.DataFrame) else pd.read_csv(Path(source))
    lower = {c.lower(): c for c in df.columns}

    def pick(names):
        return next((lower[n] for n in names if n in lower), None)

    rc, cc, pc = pick(_ROW_ALIASES), pick(_COL_ALIASES), pick(_P_ALIASES)
    if rc is None or cc is None:
        raise ValueError("neuron label CSV needs row and column columns")
    out = pd.DataFrame(
        {"som_bmu_row": df[rc].astype(np.int64), "som_bmu_col": df[cc].astype(np.int64)}
    )
    if pc is not None:
        p = pd.to_numeric(df[pc], errors="coerce").astype(np.float64)
        if p.max(skipna=True) > 1:
            p = p / 100.0
        out["p_shred"] = p
    elif "label" in lower:
        lab = df[lower["label"]]
        out["label"] = lab.astype("string")
        out["p_shred"] = np.where(lab.isna(), np.nan, (lab == positive).astype(float))
    else:
        raise ValueError("neuron label CSV needs a probability or a label column")
    if out.duplicated(["som_bmu_row", "som_bmu_col"]).any():
        raise ValueError("duplicate neurons in label CSV")
    return out


def build_source_table(
    result: MapResult,
    neuron_table: pd.DataFrame | None = None,
    index=None,
    reasons=None,
) -> pd.DataFrame:
    """Per-source SOM columns (paper 004 Sec. 8.2: best neuron, distance, P per neuron).

    Parameters
    ----------
    result : MapResult
        Mapping of the sources' preprocessed cutouts.
    neuron_table : DataFrame, optional
        ``som_bmu_row``, ``som_bmu_col``, ``p_shred`` per neuron (from
        :func:`annotate_neurons` or :func:`read_neuron_labels`); missing neurons give NaN.
    index : array_like, optional
        Index of the output (e.g. source ids); default ``RangeIndex``.
    reasons : array_like of str/None, optional
        Upstream reasons (e.g. from preprocessing); a non-null reason marks the row
        unmapped with that reason.

    Returns
    -------
    DataFrame with columns
        ``som_bmu_row``, ``som_bmu_col`` (int64, -1 if unmapped), ``som_distance``
        (float64, Euclidean distance to the BMU in preprocessed pixel units, NaN if unmapped),
        ``som_transform`` (int64 PINK transform index, -1), ``som_rotation_deg`` (float64
        [deg], NaN), ``som_flip`` (bool), ``p_shred_som`` (float64, NaN when unmapped or the
        neuron is not annotated), ``som_reason`` (string, <NA> when mapped).
    """
    n = result.bmu_index.size
    reason = pd.Series(result.reason, dtype="string")
    if reasons is not None:
        up = pd.Series(list(reasons), dtype="string")
        if up.size != n:
            raise ValueError("reasons length differs from mapping")
        reason = up.where(up.notna(), reason)
    mapped = reason.isna().to_numpy() & result.mapped
    p = np.full(n, np.nan)
    if neuron_table is not None and len(neuron_table):
        lut = {
            (int(r), int(c)): float(v)
            for r, c, v in zip(
                neuron_table["som_bmu_row"], neuron_table["som_bmu_col"], neuron_table["p_shred"]
            )
        }
        p = np.array(
            [
                lut.get((int(r), int(c)), np.nan) if m else np.nan
                for r, c, m in zip(result.bmu_row, result.bmu_col, mapped)
            ],
            dtype=np.float64,
        )
    df = pd.DataFrame(
        {
            "som_bmu_row": np.where(mapped, result.bmu_row, -1).astype(np.int64),
            "som_bmu_col": np.where(mapped, result.bmu_col, -1).astype(np.int64),
            "som_distance": np.where(mapped, result.distance, np.nan).astype(np.float64),
            "som_transform": np.where(mapped, result.transform, -1).astype(np.int64),
            "som_rotation_deg": np.where(mapped, result.rotation_deg, np.nan).astype(np.float64),
            "som_flip": np.where(mapped, result.flip, False).astype(bool),
            "p_shred_som": p,
            "som_reason": reason.where(~pd.Series(mapped), pd.NA).astype("string"),
        }
    )
    if index is not None:
        df.index = pd.Index(index)
    return df
