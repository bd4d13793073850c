"""The stellarity classifier: STELLARITY, the CLASS_STAR replacement for sep (paper 000
Sec. 3.1).

sep has no CLASS_STAR, so :class:`Stellarity` is a gradient-boosted classifier on sep
shape measurements, trained on the simulator's star/galaxy truth, that outputs P(star) in
[0, 1]. Its inputs are relative to the CCD's own stellar locus (``r_ref``, the small-size
end of the high-S/N sources, :func:`catclean.qa.extract.stellar_reference`), so it does
not have to learn the seeing. With the Source Extractor backend, CLASS_STAR itself is used
(:func:`stellarity_values`).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

STELLARITY_INPUTS = ("log_snr", "r50_rel", "log_r50", "conc", "ellip", "log_npix_rel",
                     "log_rref")


def stellarity_inputs(src: pd.DataFrame) -> np.ndarray:
    """The classifier inputs (see :data:`STELLARITY_INPUTS`) from a source table."""
    r50 = np.clip(src["r50"].to_numpy(float), 0.05, None)
    rref = src["r_ref"].to_numpy(float)
    flux = np.clip(src["flux"].to_numpy(float), 1e-3, None)
    peak = (src["peak"] - src["back"]).to_numpy(float)
    cols = [
        np.log10(np.clip(src["snr"].to_numpy(float), 0.1, None)),
        r50 / rref,
        np.log10(r50),
        peak / flux * rref ** 2,
        1.0 - src["b"].to_numpy(float) / src["a"].to_numpy(float),
        np.log10(np.clip(src["npix"].to_numpy(float), 1, None) / rref ** 2),
        np.log10(rref),
    ]
    return np.nan_to_num(np.column_stack(cols), nan=0.0, posinf=0.0, neginf=0.0)


class Stellarity:
    """P(star) from sep measurements: a HistGradientBoostingClassifier (scikit-learn).

    Parameters
    ----------
    seed : int
        Random seed of the classifier.
    """

    def __init__(self, seed: int = 0, max_iter: int = 100):
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.clf = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1,
                                                  max_leaf_nodes=31, random_state=seed)
        self.fitted = False

    def fit(self, src: pd.DataFrame, is_star: np.ndarray) -> Stellarity:
        self.clf.fit(stellarity_inputs(src), np.asarray(is_star, int))
        self.fitted = True
        return self

    def predict(self, src: pd.DataFrame) -> np.ndarray:
        if len(src) == 0:
            return np.zeros(0)
        return self.clf.predict_proba(stellarity_inputs(src))[:, 1]

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump({"format": "catclean.qa.stellarity/1", "clf": self.clf}, fh)

    @classmethod
    def load(cls, path: str | Path) -> Stellarity:
        """Load a classifier written by :meth:`save` (a pickle this pipeline wrote itself)."""
        with open(path, "rb") as fh:
            blob = pickle.load(fh)  # noqa: S301 - our own artefact
        if not isinstance(blob, dict) or blob.get("format") != "catclean.qa.stellarity/1":
            raise ValueError(f"{path}: not a catclean stellarity model")
        obj = cls.__new__(cls)
        obj.clf, obj.fitted = blob["clf"], True
        return obj


def stellarity_values(model: Stellarity, sources: pd.DataFrame) -> np.ndarray:
    """STELLARITY of each source: Source Extractor's CLASS_STAR when the backend
    measured it, else P(star) of the :class:`Stellarity` classifier."""
    if len(sources) == 0:
        return np.zeros(0)
    if "class_star" in sources and sources["class_star"].notna().all():
        return sources["class_star"].to_numpy(float)
    return model.predict(sources)


def roc_auc(y_true, score) -> float:
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true, int)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, score))
