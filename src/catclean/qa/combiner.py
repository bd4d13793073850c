"""Per-exposure combination of per-CCD class probabilities (paper 000 Sec. 3.3, docs/qa.md).

The baseline rule is the mean of the log-probabilities over the live CCDs, renormalised
with a softmax (a product-of-experts, i.e. CCDs treated as independent evidence, tempered
by the number of CCDs). It dilutes a defect that shows on only a few CCDs (a
scattered-light ring, a corner glow): the trained rule (:func:`fit_combiner`) adds, per
class, the arithmetic-mean (mixture) and the maximum single-CCD evidence, with weights and
biases fitted on the *validation* exposures (never the test ones) and shrunk towards the
baseline rule; the shrinkage strength is chosen by cross-validation on the validation
exposures, and an infinite strength (the baseline rule itself) is one of the candidates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import CLASSES

COMBINER_FEATURES = ("mean_log_p", "log_mean_p", "max_log_p")


def ccd_evidence(p_ccd: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Per-class exposure-level evidence from per-CCD probabilities, shape (3, n_classes):
    mean over CCDs of log p (product of experts), log of the mean p (mixture of experts)
    and the maximum over CCDs of log p (strongest single CCD)."""
    lp = np.log(np.clip(np.asarray(p_ccd, np.float64), eps, 1.0))
    return np.stack([lp.mean(0), np.log(np.exp(lp).mean(0)), lp.max(0)])


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _combiner_logits(theta, X):
    """X: (n, 3, C); theta: (4, C) = weights of the 3 evidence terms + bias per class."""
    return (X * theta[None, :3, :]).sum(1) + theta[3][None, :]


def _theta0(n_classes):
    t = np.zeros((4, n_classes))
    t[0] = 1.0  # baseline: softmax(mean log p)
    return t


def _fit_theta(X, y, lam):
    from scipy.optimize import minimize

    n, _, C = X.shape
    t0 = _theta0(C)
    Y = np.eye(C)[y]

    def f(v):
        t = v.reshape(4, C)
        z = _combiner_logits(t, X)
        z = z - z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1))
        nll = float((lse - (z * Y).sum(1)).mean())
        P = np.exp(z - lse[:, None])
        G = (P - Y) / n                               # d nll / d logits
        g = np.concatenate([(X * G[:, None, :]).sum(0), G.sum(0)[None]])
        d = t - t0
        return nll + lam * float((d ** 2).sum()), (g + 2 * lam * d).ravel()

    r = minimize(f, t0.ravel(), jac=True, method="L-BFGS-B")
    return r.x.reshape(4, C)


def fit_combiner(p_list: list, y: np.ndarray, seed: int = 0,
                 lambdas=(0.003, 0.03, 0.3, 3.0), n_folds: int = 5) -> dict:
    """Fit the per-exposure combination rule on held-out (validation) exposures.

    Parameters
    ----------
    p_list : list of (n_ccd_i, n_classes) per-CCD probabilities, one entry per exposure
        (exposures the model was not fitted on).
    y : (n_exposures,) true class index.
    lambdas : L2 strengths of the shrinkage towards the baseline rule; the baseline
        (infinite strength) is always a candidate. The candidate with the lowest
        cross-validated log-loss (``n_folds`` folds, stratified by class) is refitted
        on all exposures.

    Returns
    -------
    dict (JSON-serialisable): ``rule`` ('trained' or 'mean_log'), ``theta`` (4 x n_classes:
    weights of mean log p, log mean p, max log p, and the bias), ``lambda``, ``cv_logloss``
    per candidate and ``n_exposures``.
    """
    y = np.asarray(y, int)
    C = len(CLASSES)
    X = np.stack([ccd_evidence(p) for p in p_list]) if len(p_list) else np.zeros((0, 3, C))
    base = {"rule": "mean_log", "theta": _theta0(C).tolist(), "lambda": None,
            "features": list(COMBINER_FEATURES), "n_exposures": int(len(y))}
    counts = np.bincount(y, minlength=C) if len(y) else np.zeros(C, int)
    k = int(min(n_folds, counts.min()))
    if k < 2:
        base["cv_logloss"] = {}
        base["note"] = "too few validation exposures per class to fit a combiner"
        return base
    rng = np.random.default_rng([int(seed), 59])
    fold = np.empty(len(y), int)
    for c in range(C):
        idx = np.flatnonzero(y == c)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k

    def loss(theta, sel):
        P = _softmax(_combiner_logits(theta, X[sel]))
        return float(-np.log(np.clip(P[np.arange(sel.sum()), y[sel]], 1e-12, 1)).mean())

    cv = {"inf": float(np.mean([loss(_theta0(C), fold == f) for f in range(k)]))}
    for lam in lambdas:
        cv[str(lam)] = float(np.mean([loss(_fit_theta(X[fold != f], y[fold != f], lam),
                                           fold == f) for f in range(k)]))
    best = min(cv, key=cv.get)
    base["cv_logloss"] = cv
    if best == "inf":
        return base
    base.update(rule="trained", theta=_fit_theta(X, y, float(best)).tolist(),
                **{"lambda": float(best)})
    return base


def combine_ccds(p_ccd: np.ndarray, combiner: dict | None = None,
                 eps: float = 1e-6) -> np.ndarray:
    """Per-exposure probabilities from the per-CCD ones of the usable CCDs.

    Without ``combiner`` (or with its ``rule`` 'mean_log'): softmax(mean_k log p_k).
    With a trained combiner (:func:`fit_combiner`): softmax over classes c of
    a_c mean_k log p_kc + b_c log mean_k p_kc + g_c max_k log p_kc + bias_c.
    """
    p_ccd = np.asarray(p_ccd, np.float64)
    if len(p_ccd) == 0:
        return np.full(len(CLASSES), np.nan)
    theta = np.asarray(combiner["theta"]) if combiner else _theta0(p_ccd.shape[1])
    return _softmax(_combiner_logits(theta, ccd_evidence(p_ccd, eps)[None]))[0]


def load_combiner(metrics_path, kind: str) -> dict | None:
    """The per-exposure combination rule stored for model ``kind`` in ``metrics/models.json``
    (None: the file has none, i.e. softmax of the mean log p)."""
    return json.loads(Path(metrics_path).read_text())[kind].get("combiner")
