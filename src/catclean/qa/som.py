"""Vectorised batch self-organising map and k-means clustering of its codebook.

Paper 000 Sec. 3.1: a 15x15 SOM with a Gaussian neighbourhood (Eq. 2, sigma = 3) trained
on ~3,000,000 sources x 5 features with the *batch* algorithm of SOMPY (no learning
rate, Kohonen 1995), then the 225 units grouped into 20 clusters by k-means.

Batch update (one iteration = one pass over the data)::

    b(x)   = argmin_u ||x - w_u||^2                      (best-matching unit)
    S_u    = sum_{x: b(x)=u} x ,   N_u = #{x: b(x)=u}
    w_v   <- sum_u h_vu S_u / sum_u h_vu N_u,  h_vu = exp(-||r_u - r_v||^2 / 2 sigma^2)

The BMU search uses ||x - w||^2 = ||x||^2 - 2 x.w + ||w||^2, where ||x||^2 does not change
the argmin; one fused pass per iteration (:mod:`.bmu_kernel`) finds the BMUs, sums S_u and
N_u and the quantisation error without materialising the rows x units distance matrix,
in blocks of ``chunk`` rows shared among threads. Sigma shrinks exponentially from
``sigma0`` to ``sigma_end`` over the iterations. Initialisation is linear (PCA) as in
SOMPY, so training is deterministic for given data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class BatchSOM:
    """Batch SOM on a rectangular grid.

    Parameters
    ----------
    rows, cols : int
        Map size (paper: 15 x 15).
    sigma0, sigma_end : float
        Neighbourhood radius (in units) at the first and last iteration (paper: 3).
    n_iter : int
        Number of batch iterations (epochs).
    chunk : int
        Rows per block of the fused BMU pass (the unit of work of a thread and of the
        partial sums; memory ~ (n / chunk) * units * (d + 1) * 8 bytes).
    seed : int
        Seed of the random initialisation used when PCA is impossible.
    n_threads : int
        Threads of the fused BMU pass (the rule's ``threads``).

    The values come from the ``som`` mapping of a ``qa.presets`` entry
    (:meth:`from_config`, or :meth:`from_preset` outside the workflow).
    """

    @classmethod
    def from_config(cls, som: dict, seed: int = 0, n_threads: int = 1,
                    **overrides) -> BatchSOM:
        """From the ``som`` mapping of a complete ``qa.presets`` entry."""
        som = {**som, **overrides}
        keys = ("rows", "cols", "sigma0", "sigma_end", "n_iter", "chunk")
        return cls(**{k: som[k] for k in keys}, seed=seed, n_threads=n_threads)

    @classmethod
    def from_preset(cls, name: str | None = None, seed: int = 0, n_threads: int = 1,
                    **overrides) -> BatchSOM:
        """The SOM of a schema preset of ``qa`` (``paper``: 15 x 15, paper 000) with
        ``overrides`` (:func:`catclean.config.schema_preset`)."""
        from ..config import schema_preset

        return cls.from_config({**schema_preset("qa", name)["som"], **overrides}, seed,
                               n_threads)

    def __init__(self, rows: int, cols: int, sigma0: float, sigma_end: float, n_iter: int,
                 chunk: int, seed: int = 0, n_threads: int = 1):
        self.rows, self.cols = int(rows), int(cols)
        self.sigma0, self.sigma_end = float(sigma0), float(sigma_end)
        self.n_iter, self.chunk, self.seed = int(n_iter), int(chunk), int(seed)
        self.n_threads = int(n_threads)
        gy, gx = np.mgrid[0:self.rows, 0:self.cols]
        self.grid = np.column_stack([gy.ravel(), gx.ravel()]).astype(np.float32)
        d2 = ((self.grid[:, None, :] - self.grid[None, :, :]) ** 2).sum(-1)
        self._grid_d2 = d2.astype(np.float32)
        self.weights: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.quantization_error: list[float] = []

    @property
    def n_units(self) -> int:
        return self.rows * self.cols

    # ------------------------------------------------------------------ core
    def _init_weights(self, x: np.ndarray) -> np.ndarray:
        """Linear initialisation on the two leading principal components."""
        rng = np.random.default_rng(self.seed)
        sample = x if len(x) <= 200_000 else x[rng.choice(len(x), 200_000, replace=False)]
        mu = sample.mean(0)
        try:
            _, s, vt = np.linalg.svd(sample - mu, full_matrices=False)
            scale = s[:2] / np.sqrt(len(sample))
            gy = (self.grid[:, 0] / max(self.rows - 1, 1) - 0.5) * 2
            gx = (self.grid[:, 1] / max(self.cols - 1, 1) - 0.5) * 2
            w = mu + np.outer(gy, vt[0] * scale[0] * 2) + np.outer(gx, vt[1 % len(vt)] * scale[-1] * 2)
        except np.linalg.LinAlgError:
            w = sample[rng.choice(len(sample), self.n_units)]
        return w.astype(np.float32)

    def bmu(self, x: np.ndarray, return_dist: bool = False, n_threads: int | None = None):
        """Best-matching unit index of every row of ``x`` (standardised features).

        One fused pass (:func:`catclean.qa.bmu_kernel.bmu_pass`): the BMU is the argmin of
        ``||w_u||^2 - 2 x.w_u`` in float32 (first unit on ties) without materialising the
        rows x units matrix; ``n_threads`` threads share the blocks of ``chunk`` rows.
        With ``return_dist`` also the float64 distance ``||x - w_b||`` of every row.
        """
        from .bmu_kernel import bmu_pass

        out = bmu_pass(x, self.weights, self.chunk, int(n_threads or self.n_threads or 1),
                       want_dist=return_dist)
        return (out["idx"], out["dist"]) if return_dist else out["idx"]

    def sigma_at(self, it: int) -> float:
        if self.n_iter <= 1:
            return self.sigma0
        return float(self.sigma0 * (self.sigma_end / self.sigma0) ** (it / (self.n_iter - 1)))

    def step(self, x: np.ndarray, sigma: float) -> float:
        """One batch iteration over all rows; returns the mean quantisation error.

        ``x`` are standardised rows. BMU search, per-unit sums and the quantisation error
        come from one fused pass (:func:`catclean.qa.bmu_kernel.bmu_pass`); the result
        does not depend on the number of threads.
        """
        from .bmu_kernel import bmu_pass

        out = bmu_pass(x, self.weights, self.chunk, self.n_threads, want_idx=False,
                       accumulate=True)
        h = np.exp(-self._grid_d2.astype(np.float64) / (2.0 * sigma * sigma))
        num = h @ out["sums"]
        den = h @ out["counts"]
        ok = den > 1e-12
        self.weights[ok] = (num[ok] / den[ok, None]).astype(np.float32)
        return out["dist_sum"] / len(x)

    def fit(self, x: np.ndarray, standardize: bool = True, n_threads: int | None = None,
            progress=None) -> BatchSOM:
        """Train on ``x`` (n, d). With ``standardize`` features are z-scored with the
        training mean and std (stored and re-applied by :meth:`transform`)."""
        x = np.asarray(x, np.float32)
        if standardize:
            self.mean = x.mean(0)
            self.std = np.where(x.std(0) > 0, x.std(0), 1.0).astype(np.float32)
        else:
            self.mean = np.zeros(x.shape[1], np.float32)
            self.std = np.ones(x.shape[1], np.float32)
        z = self.transform(x)
        self.weights = self._init_weights(z)
        self.quantization_error = []
        if n_threads:
            self.n_threads = int(n_threads)
        for it in range(self.n_iter):
            qe = self.step(z, self.sigma_at(it))
            self.quantization_error.append(qe)
            if progress is not None:
                progress(it, qe)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.mean) / self.std).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """BMU index of raw (unstandardised) feature rows."""
        if len(x) == 0:
            return np.zeros(0, np.int32)
        return self.bmu(self.transform(x))

    def hit_map(self, x: np.ndarray) -> np.ndarray:
        """(rows, cols) count of rows of ``x`` per unit."""
        return np.bincount(self.predict(x), minlength=self.n_units).reshape(self.rows, self.cols)

    # --------------------------------------------------------------- persistence
    def save(self, path: str | Path, **extra) -> None:
        """Write an ``.npz`` with the codebook, standardisation and any ``extra`` arrays."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = np.array([self.rows, self.cols, self.n_iter, self.chunk, self.seed])
        with open(path, "wb") as fh:
            np.savez(fh, weights=self.weights, mean=self.mean, std=self.std, meta=meta,
                     sigma=np.array([self.sigma0, self.sigma_end]),
                     qe=np.array(self.quantization_error), **extra)

    @classmethod
    def load(cls, path: str | Path) -> tuple[BatchSOM, dict]:
        """Load a map written by :meth:`save`; returns (som, extra arrays)."""
        with np.load(path, allow_pickle=False) as z:
            rows, cols, n_iter, chunk, seed = (int(v) for v in z["meta"])
            som = cls(rows, cols, float(z["sigma"][0]), float(z["sigma"][1]), n_iter, chunk, seed)
            som.weights, som.mean, som.std = z["weights"], z["mean"], z["std"]
            som.quantization_error = list(z["qe"])
            extra = {k: z[k] for k in z.files
                     if k not in ("weights", "mean", "std", "meta", "sigma", "qe")}
        return som, extra


def cluster_codebook(weights: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """k-means (scikit-learn) of the SOM units into ``n_clusters`` groups (paper Sec. 3.1).

    Cluster labels are renumbered by decreasing mean of the first feature (ISO0) so
    they do not depend on k-means' arbitrary order. Returns the cluster of each unit.
    """
    from sklearn.cluster import KMeans

    n_clusters = min(int(n_clusters), len(weights))
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(weights)
    order = np.argsort(-km.cluster_centers_[:, 0], kind="stable")
    remap = np.empty(n_clusters, np.int32)
    remap[order] = np.arange(n_clusters)
    return remap[km.labels_].astype(np.int32)
