"""Rotation- and flip-invariant SOM over image cutouts, as PINK 2.x trains and maps it.

Paper 004 (Vantyghem et al., PINK cookbook), Sec. 1 (algorithm steps 2a-2e) and Sec. 4
(Table 2 options, Table 3 schedule); update rule of PINK's CPU ``Trainer``::

    for each image x (shuffled each epoch, seeded numpy Generator):
        T_k(x), k < numrot * (1 + flip)                       all spatial transforms
        d(n, k) = sum_{p in region} (T_k(x)[p] - w_n[p])^2    squared Euclidean distance
        k*(n)   = argmin_k d(n, k)                             best transform per neuron (2c)
        b       = argmin_n d(n, k*(n))                         best-matching neuron (2d)
        w_n    += h(|r_b - r_n|) * (T_{k*(n)}(x) - w_n)        every neuron, full grid (2e)

``h`` already includes the damping factor (PINK ``DistributionFunctor``), ``|r_b - r_n|``
is the lattice distance (cartesian: Euclidean in (row, col), optionally periodic; hexagonal:
axial hex distance, PINK ``HexagonalLayout``). Ties go to the lowest index (PINK uses strict
``<`` in both searches). Mapping reports ``sqrt(d)`` like PINK's ``Mapper``.

All distances are float32 GEMMs: ``||y||^2 - 2 y.w + ||w||^2`` over (base rotations x
region pixels) @ (region pixels x symmetry-permuted neurons); see :mod:`.transforms`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .transforms import (
    TransformPlan,
    apply_symmetry,
    default_euclidean_distance_dim,
    default_neuron_dim,
    make_plan,
)

NEIGHBOURHOODS = ("gaussian", "unitygaussian", "mexicanhat")
LAYOUTS = ("cartesian", "hexagonal")
INITS = ("zero", "random", "random_with_preferred_direction")


@dataclass
class Stage:
    """One training cycle (paper 004 Sec. 4, Table 3 row).

    Attributes
    ----------
    sigma : float
        Neighbourhood width [neurons, lattice units].
    damping : float
        Damping factor / learning rate (dimensionless).
    numrot : int
        Rotations per image in this cycle (1 or a multiple of 4).
    epochs : int
        Passes over the training images (PINK ``--num-iter``).
    """

    sigma: float
    damping: float
    numrot: int
    epochs: int


@dataclass
class SOMSettings:
    """Hyper-parameters (paper 004 Table 2 names in brackets).

    Attributes
    ----------
    rows, cols : int
        Lattice size [neurons] (``--som-height``, ``--som-width``); hexagonal needs
        ``rows == cols`` odd.
    layout : {"cartesian", "hexagonal"}
        Lattice (``--layout``).
    periodic : bool
        Periodic boundaries (``--pbc``, cartesian only; PINK 2 rejects it, we support it).
    neighbourhood : {"gaussian", "unitygaussian", "mexicanhat"}
        Distribution function (``--dist-func``); paper Sec. 8 uses ``unitygaussian``.
    schedule : list of Stage
        Training cycles (the ``paper`` preset holds paper 004 Table 3's).
    flip : bool
        Use mirrored transforms (``--flip-off`` turns them off).
    neuron_dim, ed_dim : int or None
        Neuron side and distance-region side [pixels]; None = PINK defaults.
    ed_shape : {"quadratic", "circular"}
        Distance region (``--euclidean-distance-shape``; Sec. 8 uses circular).
    init : {"zero", "random", "random_with_preferred_direction"}
        Initial weights (``--init``); random = uniform [0, 1).
    max_update_distance : float
        Only update neurons closer than this on the lattice (<= 0: all), ``--max-update-distance``.
    shuffle : bool
        Shuffle image order each epoch (``--input-shuffle-off`` turns it off).
    """

    rows: int
    cols: int
    layout: str
    periodic: bool
    neighbourhood: str
    schedule: list
    flip: bool
    neuron_dim: int | None
    ed_dim: int | None
    ed_shape: str
    init: str
    max_update_distance: float
    shuffle: bool

    @classmethod
    def from_config(cls, cfg: dict) -> SOMSettings:
        """The SOM fields of a complete ``som.presets`` entry (every key from the schema)."""
        from ..config import settings_from

        return settings_from(cls, cfg)

    @classmethod
    def from_preset(cls, name: str | None = None, **overrides) -> SOMSettings:
        """A schema preset of ``som`` (``paper``: Table 3) with ``overrides``
        (:func:`catclean.config.schema_preset`)."""
        from ..config import schema_preset

        return cls.from_config({**schema_preset("som", name), **overrides})

    def __post_init__(self):
        self.schedule = [s if isinstance(s, Stage) else Stage(**s) for s in self.schedule]
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}")
        if self.neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(f"neighbourhood must be one of {NEIGHBOURHOODS}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}")
        if self.layout == "hexagonal":
            if self.rows != self.cols or self.rows % 2 == 0:
                raise ValueError("hexagonal layout needs rows == cols and odd")
            if self.periodic:
                raise ValueError("periodic boundaries are only defined for the cartesian layout")
        for s in self.schedule:
            if s.numrot < 1 or (s.numrot != 1 and s.numrot % 4):
                raise ValueError("numrot must be 1 or a multiple of 4")
            if s.sigma <= 0 or s.epochs < 0:
                raise ValueError("sigma must be > 0 and epochs >= 0")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> SOMSettings:
        """Build from a config mapping (unknown keys raise ``TypeError``)."""
        return cls(**dict(cfg))

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON/YAML serialisable)."""
        d = asdict(self)
        d["schedule"] = [asdict(s) if isinstance(s, Stage) else s for s in self.schedule]
        return d


def neighbourhood_function(name: str, sigma: float, damping: float):
    """PINK ``DistributionFunctor`` as a vectorised function of lattice distance.

    Parameters
    ----------
    name : {"gaussian", "unitygaussian", "mexicanhat"}
        ``gaussian``: ``damping / (sigma sqrt(2 pi)) exp(-d^2 / 2 sigma^2)`` (PINK code;
        paper 004 Eq. 4 prints ``1/(2 pi sigma^2)``, the code's 1-D normalisation is used);
        ``unitygaussian``: ``damping exp(-d^2 / 2 sigma^2)``; ``mexicanhat``:
        ``2 damping / (sqrt(3 sigma) pi^(1/4)) (1 - d^2/sigma^2) exp(-d^2 / 2 sigma^2)``.
    sigma : float
        Width [lattice units].
    damping : float
        Damping factor (dimensionless).
    """
    s, a = float(sigma), float(damping)
    if s <= 0:
        raise ValueError("sigma must be > 0")
    if name == "gaussian":
        return lambda d: a / (s * math.sqrt(2 * math.pi)) * np.exp(-0.5 * (d / s) ** 2)
    if name == "unitygaussian":
        return lambda d: a * np.exp(-0.5 * (d / s) ** 2)
    if name == "mexicanhat":
        c = 2.0 * a / (math.sqrt(3.0 * s) * math.pi**0.25)
        return lambda d: c * (1 - d**2 / s**2) * np.exp(-(d**2) / (2 * s**2))
    raise ValueError(f"unknown neighbourhood {name!r}")


def lattice_positions(rows: int, cols: int, layout: str = "cartesian") -> np.ndarray:
    """(row, col) of every neuron in storage order, shape (N, 2), int64.

    Cartesian: row-major ``index = row * cols + col``. Hexagonal (PINK ``HexagonalLayout``,
    redblobgames axial storage): row ``r`` holds ``d - |r - R|`` neurons, ``R = (d-1)/2``,
    and col is the axial ``q`` (starting at ``R - r`` for the upper rows).
    """
    if layout == "cartesian":
        r, c = np.divmod(np.arange(rows * cols), cols)
        return np.stack([r, c], axis=1).astype(np.int64)
    d = rows
    rad = (d - 1) // 2
    out = []
    for r in range(d):
        q0 = max(0, rad - r)
        out += [(r, q0 + j) for j in range(d - abs(rad - r))]
    return np.asarray(out, dtype=np.int64)


def lattice_distances(
    rows: int, cols: int, layout: str = "cartesian", periodic: bool = False
) -> np.ndarray:
    """Pairwise lattice distance between neurons [lattice units], shape (N, N), float64.

    Cartesian: Euclidean in (row, col) (PINK ``CartesianLayout::get_distance``), with
    minimum-image wrapping when ``periodic``. Hexagonal: PINK ``HexagonalLayout`` axial
    distance ``|dq + dr|`` if same sign else ``max(|dq|, |dr|)``.
    """
    pos = lattice_positions(rows, cols, layout)
    dr = pos[:, None, 0] - pos[None, :, 0]
    dc = pos[:, None, 1] - pos[None, :, 1]
    if layout == "cartesian":
        if periodic:
            dr = np.minimum(np.abs(dr), rows - np.abs(dr))
            dc = np.minimum(np.abs(dc), cols - np.abs(dc))
        return np.sqrt(dr.astype(float) ** 2 + dc.astype(float) ** 2)
    dq, dr_ = dc, dr
    same = (dq >= 0) == (dr_ >= 0)
    return np.where(same, np.abs(dq + dr_), np.maximum(np.abs(dq), np.abs(dr_))).astype(float)


def update_factors(settings: SOMSettings, stage: Stage) -> np.ndarray:
    """Neighbourhood x damping for (BMU, neuron) pairs, shape (N, N), float32."""
    dist = lattice_distances(settings.rows, settings.cols, settings.layout, settings.periodic)
    h = neighbourhood_function(settings.neighbourhood, stage.sigma, stage.damping)(dist)
    if settings.max_update_distance > 0:
        h = np.where(dist < settings.max_update_distance, h, 0.0)
    return h.astype(np.float32)


def as_image_stack(images) -> np.ndarray:
    """Coerce images to float32 (N, C, H, W); (N, H, W) gets C = 1. Images must be square."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError("images must have shape (N, H, W) or (N, C, H, W)")
    if a.shape[2] != a.shape[3]:
        raise ValueError("images must be square (PINK requirement)")
    return a


def image_reasons(images: np.ndarray) -> np.ndarray:
    """Why an image cannot be mapped: 'nan_pixels', 'blank_image' or None (object array)."""
    a = images.reshape(images.shape[0], -1)
    out = np.full(a.shape[0], None, dtype=object)
    finite = np.isfinite(a).all(axis=1)
    out[~finite] = "nan_pixels"
    with np.errstate(invalid="ignore"):
        blank = finite & (np.nanmax(a, axis=1) == np.nanmin(a, axis=1))
    out[blank] = "blank_image"
    return out


class _Engine:
    """Distance machinery for one plan and a (N, C, D, D) float32 weight array (in place)."""

    def __init__(self, plan: TransformPlan, w: np.ndarray):
        self.plan = plan
        self.w = w
        self.n = w.shape[0]
        self.g = len(plan.symmetries)
        self.stack = plan.neuron_stack(w)
        self.wsq = np.empty(self.n, np.float32)
        self.refresh()

    def refresh(self):
        """Recompute the permuted neuron stack and ||w||^2_M from the weights."""
        self.plan.neuron_stack(self.w, out=self.stack)
        self._wsq()

    def _wsq(self):
        s0 = self.stack[:, 0].reshape(self.n, -1)  # identity slot = w on M (masked)
        self.wsq[:] = np.einsum("ij,ij->i", s0, s0)

    def distances(self, y: np.ndarray):
        """Best squared distance and transform per (image, neuron).

        Parameters
        ----------
        y : ndarray, (B, n_base, R) float32
            Base rotations on the GEMM region.

        Returns
        -------
        dmin : (B, N) float32, squared distances (clipped at 0)
        kbest : (B, N) int64, PINK transform index
        """
        b, nb, r = y.shape
        y2 = y.reshape(b * nb, r)
        cross = y2 @ self.stack.reshape(self.n * self.g, r).T  # (B*nb, N*G) float32 GEMM
        if self.plan.region_masks is None:
            ysq = np.einsum("ij,ij->i", y2, y2)[:, None, None]
        else:
            ysq = ((y2 * y2) @ self.plan.region_masks.T)[:, None, :]
        cross *= np.float32(-2.0)
        d = cross.reshape(b * nb, self.n, self.g)
        d += ysq
        d += self.wsq[None, :, None]
        # PINK order k = g * n_base + i -> axis (B, N, G, nb)
        d = d.reshape(b, nb, self.n, self.g).transpose(0, 2, 3, 1).reshape(b, self.n, -1)
        kbest = d.argmin(axis=2)
        dmin = np.take_along_axis(d, kbest[:, :, None], axis=2)[:, :, 0]
        return np.maximum(dmin, 0.0), kbest


@dataclass
class SOM:
    """A trained rotation/flip-invariant SOM.

    Attributes
    ----------
    weights : ndarray, (N, C, D, D) float32
        Neuron images in storage order (cartesian row-major; hexagonal PINK axial order).
    settings : SOMSettings
        Settings it was trained with (lattice, numrot/flip of the last stage for mapping).
    image_dim : int
        Side of the images it was trained on [pixels].
    history : list of dict
        Per-epoch ``{"stage", "epoch", "sigma", "damping", "numrot", "images", "skipped",
        "seconds", "mean_distance"}`` (``skipped``: invalid images left out; mean BMU
        distance of each image just before its update, sqrt of the squared distance).
    """

    weights: np.ndarray
    settings: SOMSettings
    image_dim: int
    history: list = field(default_factory=list)

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return self.weights.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """Lattice (rows, cols)."""
        return self.settings.rows, self.settings.cols

    @property
    def positions(self) -> np.ndarray:
        """(row, col) of each neuron, (N, 2) int64."""
        return lattice_positions(self.settings.rows, self.settings.cols, self.settings.layout)

    @property
    def numrot(self) -> int:
        """Rotations used for mapping (last training stage)."""
        return self.settings.schedule[-1].numrot

    def plan(self, numrot: int | None = None, flip: bool | None = None) -> TransformPlan:
        """Transform plan for this SOM's geometry."""
        st = self.settings
        return make_plan(
            self.image_dim,
            self.weights.shape[1],
            numrot or self.numrot,
            st.flip if flip is None else flip,
            neuron_dim=self.weights.shape[2],
            ed_dim=st.ed_dim or None,
            shape=st.ed_shape,
        )

    def neuron(self, row: int, col: int) -> np.ndarray:
        """Weights of the neuron at lattice (row, col), (C, D, D)."""
        hit = np.flatnonzero((self.positions[:, 0] == row) & (self.positions[:, 1] == col))
        if hit.size == 0:
            raise IndexError((row, col))
        return self.weights[hit[0]]


def _resolve_dims(settings: SOMSettings, image_dim: int) -> tuple[int, int | None]:
    rot = any(s.numrot != 1 for s in settings.schedule)
    numrot = 4 if rot else 1
    nd = settings.neuron_dim or default_neuron_dim(image_dim, numrot)
    ed = settings.ed_dim or default_euclidean_distance_dim(image_dim, numrot, settings.ed_shape)
    return int(nd), int(ed)


def init_weights(
    n: int, channels: int, neuron_dim: int, init: str, rng: np.random.Generator
) -> np.ndarray:
    """Initial neurons (PINK ``--init``): zeros, uniform [0,1), or uniform with a 1-diagonal."""
    shape = (n, channels, neuron_dim, neuron_dim)
    if init == "zero":
        return np.zeros(shape, np.float32)
    w = rng.random(shape, dtype=np.float32)
    if init == "random_with_preferred_direction":
        i = np.arange(neuron_dim)
        w[:, :, i, i] = 1.0
    return w


def train_som(
    images,
    settings: SOMSettings | dict,
    seed: int = 0,
    initial: SOM | np.ndarray | None = None,
    progress=None,
) -> SOM:
    """Train a rotation/flip-invariant SOM (paper 004 Sec. 1 steps 1-3, Sec. 4).

    Parameters
    ----------
    images : array_like, (N, H, W) or (N, C, H, W)
        Preprocessed images (Sec. 3: [0, 1] scaled, channel weighted). Images with
        non-finite pixels or constant value are skipped (see :func:`image_reasons`).
    settings : SOMSettings or dict
        Hyper-parameters (a dict: a complete ``som.presets`` entry;
        ``SOMSettings.from_preset("paper")`` is paper 004 Table 3 on a 10x10 lattice).
    seed : int
        Seed of the numpy ``Generator`` for initialisation and per-epoch shuffles;
        results are bit-identical for the same seed, data and BLAS thread count.
    initial : SOM or ndarray (N, C, D, D), optional
        Start from these neurons (PINK ``--init file``) instead of ``settings.init``.
    progress : callable, optional
        Called with each history record after each epoch.

    Returns
    -------
    SOM
    """
    st = settings if isinstance(settings, SOMSettings) else SOMSettings.from_config(settings)
    imgs = as_image_stack(images)
    ok = np.array([r is None for r in image_reasons(imgs)], dtype=bool)
    imgs = imgs[ok]
    if imgs.shape[0] == 0:
        raise ValueError("no valid images to train on")
    n_img, ch, s, _ = imgs.shape
    rng = np.random.default_rng(seed)
    n = lattice_positions(st.rows, st.cols, st.layout).shape[0]
    if initial is not None:
        w0 = initial.weights if isinstance(initial, SOM) else np.asarray(initial, np.float32)
        nd = w0.shape[-1]
    else:
        nd, _ = _resolve_dims(st, s)
        w0 = init_weights(n, ch, nd, st.init, rng)
    if w0.shape != (n, ch, nd, nd):
        raise ValueError(f"initial weights shape {w0.shape} != {(n, ch, nd, nd)}")
    w = np.ascontiguousarray(w0, dtype=np.float32).copy()
    x_all = imgs.reshape(n_img, -1)
    som = SOM(weights=w0, settings=st, image_dim=s)

    for si, stage in enumerate(st.schedule):
        plan = make_plan(s, ch, stage.numrot, st.flip, nd, st.ed_dim, st.ed_shape)
        eng = None if plan.symmetric_region else _Engine(plan, w)
        h = update_factors(st, stage)
        for ep in range(stage.epochs):
            t0 = time.perf_counter()
            order = rng.permutation(n_img) if st.shuffle else np.arange(n_img)
            tot = 0.0
            for j in order:
                tot += _train_one(eng, plan, h, x_all[j], w)
            rec = {
                "stage": si,
                "epoch": ep,
                "sigma": stage.sigma,
                "damping": stage.damping,
                "numrot": stage.numrot,
                "images": int(n_img),
                "skipped": int((~ok).sum()),
                "seconds": time.perf_counter() - t0,
                "mean_distance": tot / n_img,
            }
            som.history.append(rec)
            if progress:
                progress(rec)
    som.weights = w
    return som


def _image_side_distances(plan: TransformPlan, w: np.ndarray, x: np.ndarray):
    """Squared distances of all transforms of one image to all neurons, (T, N) float32.

    For a centred square region the symmetries commute with the crop, so the transforms
    are built on the image side (``G * nb`` region crops) and multiplied with the cropped
    neurons: cheaper than keeping the permuted neuron stack when ``T < 8 N``.
    """
    r0, r1, c0, c1 = plan.box
    c, hh = plan.channels, r1 - r0
    yb = (plan.base_region @ x).reshape(plan.n_base, c, hh, c1 - c0)
    g = len(plan.symmetries)
    yall = np.empty((g, plan.n_base, c, hh, c1 - c0), np.float32)
    for gi, (f, q) in enumerate(plan.symmetries):
        yall[gi] = apply_symmetry(yb, f, q)
    y2 = yall.reshape(g * plan.n_base, -1)
    wc = np.ascontiguousarray(w[:, :, r0:r1, c0:c1]).reshape(w.shape[0], -1)
    yb2 = yb.reshape(plan.n_base, -1)
    ysq = np.tile(np.einsum("ij,ij->i", yb2, yb2), g)
    d = y2 @ wc.T  # (T, N) float32 GEMM
    d *= np.float32(-2.0)
    d += ysq[:, None]
    d += np.einsum("ij,ij->i", wc, wc)[None, :]
    return d


def _train_one(
    eng: _Engine | None, plan: TransformPlan, h: np.ndarray, x: np.ndarray, w: np.ndarray
) -> float:
    """One PINK training step for a flattened image; returns the BMU distance (sqrt).

    PINK ``Trainer``: ``w_n -= (w_n - T_{k*(n)} x) * h[bmu, n]`` for every neuron with a
    non-zero factor, on the full neuron grid. ``eng`` is None for the image-side path.
    """
    if eng is None:
        d = _image_side_distances(plan, w, x)
        kbest = d.argmin(axis=0)
        dmin = np.maximum(d[kbest, np.arange(d.shape[1])], 0.0)
    else:
        y = (plan.base_region @ x).reshape(1, plan.n_base, plan.region_size)
        dmin, kbest = eng.distances(y)
        dmin, kbest = dmin[0], kbest[0]
    bmu = int(dmin.argmin())
    fac = h[bmu]
    nz = np.flatnonzero(fac)
    if nz.size:
        ks = kbest[nz]
        bases, gs = ks % plan.n_base, ks // plan.n_base
        ub, uinv = np.unique(bases, return_inverse=True)
        d, c = plan.neuron_dim, plan.channels
        y_full = np.stack([(plan.base_full[i] @ x).reshape(c, d, d) for i in ub])
        # neurons: w_n -= (w_n - T_{k_n}) * h_n, grouped by transform
        order = np.argsort(ks, kind="stable")
        cuts = np.flatnonzero(np.diff(ks[order])) + 1
        for grp in np.split(order, cuts):
            t = apply_symmetry(y_full[uinv[grp[0]]], *plan.symmetries[gs[grp[0]]])
            idx = nz[grp]
            if idx.size == 1:
                wn = w[idx[0]]
                wn -= (wn - t) * fac[idx[0]]
            else:
                wk = w[idx]
                wk -= (wk - t) * fac[idx][:, None, None, None]
                w[idx] = wk
        if eng is not None:
            _update_stack(eng, plan, y_full, uinv, gs, nz, fac)
    return float(math.sqrt(dmin[bmu]))


def _update_stack(eng, plan, y_full, uinv, gs, nz, fac):
    """Give the permuted neuron stack the identical element-wise update (exact, no drift):
    ``inv_g(T_{k_n}) = S_{compose[g_n, g]}(y_{i_n})``."""
    crops = plan.symmetry_crops(y_full).reshape(y_full.shape[0] * eng.g, -1)
    rows = uinv[:, None] * eng.g + plan.compose[gs]  # (nz, G)
    tst = crops[rows]  # (nz, G, R)
    if plan.region_masks is not None:
        tst *= plan.region_masks
    f = fac[nz][:, None, None]
    st = eng.stack.reshape(eng.n, eng.g, -1)
    if nz.size == eng.n:
        tst -= st
        tst *= f
        st += tst
    else:
        sub = st[nz]
        sub -= (sub - tst) * f
        st[nz] = sub
    eng._wsq()


@dataclass
class MapResult:
    """Result of mapping images onto a SOM (one entry per input image).

    Attributes
    ----------
    bmu_index : (n,) int64, storage index of the best-matching neuron, -1 if not mapped.
    bmu_row, bmu_col : (n,) int64, lattice position, -1 if not mapped.
    distance : (n,) float64, Euclidean distance to the BMU (sqrt of the summed squared
        pixel differences over the distance region, pixel units of the preprocessed
        images), NaN if not mapped.
    transform : (n,) int64, PINK transform index of the BMU match, -1 if not mapped.
    rotation_deg : (n,) float64, rotation angle of that transform [deg], NaN if not mapped.
    flip : (n,) bool, whether that transform is mirrored.
    reason : (n,) object, None when mapped, else 'nan_pixels' / 'blank_image'.
    distances : (n, N) float32, distance to every neuron (PINK mapping file), NaN rows
        when not mapped.
    transforms : (n, N) int32, best transform per neuron (PINK transform file), -1 rows.
    numrot : int, rotations used.
    """

    bmu_index: np.ndarray
    bmu_row: np.ndarray
    bmu_col: np.ndarray
    distance: np.ndarray
    transform: np.ndarray
    rotation_deg: np.ndarray
    flip: np.ndarray
    reason: np.ndarray
    distances: np.ndarray
    transforms: np.ndarray
    numrot: int

    @property
    def mapped(self) -> np.ndarray:
        """Boolean mask of mapped images."""
        return self.bmu_index >= 0

    def quantization_error(self) -> float:
        """Mean BMU distance over mapped images."""
        return float(np.nanmean(self.distance)) if self.mapped.any() else float("nan")


def map_images(
    som: SOM,
    images,
    numrot: int | None = None,
    flip: bool | None = None,
    batch_size: int = 32,
) -> MapResult:
    """Map images onto a SOM (paper 004 Sec. 1 step 4; PINK ``--map``/``--store-rot-flip``).

    Parameters
    ----------
    som : SOM
        Trained SOM.
    images : array_like, (n, H, W) or (n, C, H, W)
        Preprocessed images of the same side and channels as the training images.
    numrot, flip : optional
        Override the rotations / flip of the last training stage.
    batch_size : int
        Images per GEMM (memory ~ batch_size x numrot/4 x region pixels x 4 bytes x 2).

    Returns
    -------
    MapResult
        Images with NaN pixels or constant value are not mapped and carry a reason.
    """
    imgs = as_image_stack(images)
    if imgs.shape[2] != som.image_dim or imgs.shape[1] != som.weights.shape[1]:
        raise ValueError("images do not match the SOM's image side / channels")
    plan = som.plan(numrot, flip)
    n_img, nn = imgs.shape[0], som.n_neurons
    eng = _Engine(plan, np.ascontiguousarray(som.weights, dtype=np.float32))
    reason = image_reasons(imgs)
    ok = np.flatnonzero([r is None for r in reason])
    dist_all = np.full((n_img, nn), np.nan, np.float32)
    k_all = np.full((n_img, nn), -1, np.int32)
    x = imgs.reshape(n_img, -1)
    for b0 in range(0, ok.size, max(1, int(batch_size))):
        sel = ok[b0 : b0 + batch_size]
        dmin, kbest = eng.distances(plan.base_images(x[sel]))
        dist_all[sel] = np.sqrt(dmin)
        k_all[sel] = kbest
    bmu = np.full(n_img, -1, np.int64)
    bmu[ok] = np.argmin(dist_all[ok], axis=1)
    pos = som.positions
    rows = np.where(bmu >= 0, pos[np.maximum(bmu, 0), 0], -1)
    cols = np.where(bmu >= 0, pos[np.maximum(bmu, 0), 1], -1)
    dist = np.full(n_img, np.nan)
    k = np.full(n_img, -1, np.int64)
    dist[ok] = dist_all[ok, bmu[ok]]
    k[ok] = k_all[ok, bmu[ok]]
    rot = np.full(n_img, np.nan)
    rot[ok] = (k[ok] % plan.numrot) * (360.0 / plan.numrot)
    flp = np.zeros(n_img, bool)
    flp[ok] = plan.is_flipped(k[ok])
    return MapResult(bmu, rows, cols, dist, k, rot, flp, reason, dist_all, k_all, plan.numrot)
