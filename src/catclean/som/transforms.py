"""Rotation/flip transforms of PINK (paper 004, Sec. 1-2 and 4) as precomputed linear maps.

PINK (Polsterer et al. 2015; HITS-AIN/PINK 2.x, ``SpatialTransformer``) turns one image of
``image_dim x image_dim`` pixels into ``numrot`` (x2 with flips) *spatial transforms* on the
``neuron_dim x neuron_dim`` neuron grid, in this order (transform index ``k``)::

    nr = numrot // 4                       (interpolated rotations per quadrant)
    k = f * numrot + q * nr + i            f in {0, 1} (flip), q in 0..3 (90 deg turns),
                                           i in 0..nr-1 (base rotation)
    angle(k) = (k % numrot) * 2 pi / numrot   [rad], flip(k) = k // numrot

* base ``i = 0`` is PINK's ``resize``: the image centred on the neuron grid by integer
  margins (crop or zero pad), no interpolation;
* base ``i >= 1`` is PINK's ``rotate_bilinear`` by ``i * 2 pi / numrot`` about the pixel
  centres ``(dim - 1) / 2``, zero outside the source image;
* quadrant ``q`` applies PINK's clockwise ``rotate_90_degrees`` q times to the base image;
* flip applies PINK's ``flip`` (row order reversed) to the rotated image.

``numrot = 1`` means no rotation (transform 0, and 1 = flipped). Distances are taken over
the central ``euclidean_distance_dim`` square (PINK ``EuclideanDistanceFunctor``) or
PINK's circle (``CircularEuclideanDistanceFunctor``) of the neuron grid.

Speed trick (exact, not an approximation): the 4 quadrants and the flip are pixel
permutations ``pi_g`` of the neuron grid, so for every base rotation ``y_i``::

    sum_{p in M} (y_k[p] - w[p])^2 = sum_{s in pi_g(M)} (y_i[s] - w[pi_g^-1(s)])^2

Only the ``nr`` base rotations are interpolated (a sparse bilinear matrix built once per
geometry, applied to whole batches). For mapping, the 8 symmetries are applied to the
*neurons* once (strided rot90/flip copies, :meth:`TransformPlan.neuron_stack`) and all
(base rotation x symmetry x neuron) distances come from one float32 GEMM; for training
with the default centred square region the symmetries are applied to the cropped base
images instead (``numrot * (1 + flip)`` rows against the neurons), which is cheaper when
the neurons change after every image.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


def default_neuron_dim(image_dim: int, numrot: int) -> int:
    """PINK's default neuron side (``InputData.cpp``).

    Parameters
    ----------
    image_dim : int
        Image side [pixels].
    numrot : int
        Number of rotations.

    Returns
    -------
    int
        ``image_dim`` for ``numrot == 1``, else ``int(2 * image_dim / sqrt(2) + 1)`` [pixels]
        (large enough to hold the rotated image corners).
    """
    if numrot == 1:
        return int(image_dim)
    return int(2 * image_dim / math.sqrt(2.0) + 1)


def default_euclidean_distance_dim(image_dim: int, numrot: int, shape: str = "quadratic") -> int:
    """PINK's default side of the region the distance is computed over.

    Parameters
    ----------
    image_dim : int
        Image side [pixels].
    numrot : int
        Number of rotations.
    shape : {"quadratic", "circular"}
        Distance region shape.

    Returns
    -------
    int
        ``int(image_dim * sqrt(2) / 2)`` for rotated quadratic regions (the largest square
        that stays inside the image at every angle), else ``image_dim`` [pixels].
    """
    if numrot != 1 and shape == "quadratic":
        return int(image_dim * math.sqrt(2.0) / 2)
    return int(image_dim)


def distance_mask(neuron_dim: int, ed_dim: int, shape: str = "quadratic") -> np.ndarray:
    """Boolean ``(neuron_dim, neuron_dim)`` mask of the pixels entering the distance.

    Follows PINK's ``EuclideanDistanceFunctor`` (central square starting at
    ``int((D - E) / 2)``) or ``CircularEuclideanDistanceFunctor`` (row ``i`` of the
    ``E``-square keeps columns ``round(D//2 - delta) .. round(D//2 + delta) - 1`` with
    ``delta = sqrt(2 r (i + 1/2) - (i + 1/2)^2)``, ``r = E // 2``).
    """
    d, e = int(neuron_dim), int(ed_dim)
    if e > d:
        raise ValueError(f"euclidean distance dim {e} > neuron dim {d}")
    mask = np.zeros((d, d), dtype=bool)
    if shape == "quadratic":
        beg = int((d - e) * 0.5)
        mask[beg : beg + e, beg : beg + e] = True
    elif shape == "circular":
        center, radius = d // 2, e // 2
        for i in range(e):
            arg = 2 * radius * (i + 0.5) - (i + 0.5) ** 2
            if arg < 0:
                continue
            delta = math.sqrt(arg)
            gi = i + (d - e) // 2
            lo, hi = math.floor(center - delta + 0.5), math.floor(center + delta + 0.5)
            mask[gi, max(lo, 0) : max(hi, 0)] = True
    else:
        raise ValueError(f"unknown distance shape {shape!r}")
    return mask


def _base_rotation_taps(image_dim: int, neuron_dim: int, angle: float):
    """Bilinear taps of PINK ``rotate_bilinear`` for one angle [rad].

    Returns ``(rows, cols, weights)`` with destination pixel rows on the neuron grid
    (flattened) and source pixel columns on the image grid (flattened), float32 weights.
    """
    s, d = int(image_dim), int(neuron_dim)
    f32 = np.float32
    cos_a, sin_a = f32(math.cos(f32(angle))), f32(math.sin(f32(angle)))
    sc, dc = f32((s - 1) * 0.5), f32((d - 1) * 0.5)
    r, c = np.meshgrid(np.arange(d, dtype=f32), np.arange(d, dtype=f32), indexing="ij")
    pr, pc = r - dc, c - dc
    src_r = pr * cos_a - pc * sin_a + sc
    src_c = pr * sin_a + pc * cos_a + sc
    ok = (src_r >= 0) & (src_r <= s - 1) & (src_c >= 0) & (src_c <= s - 1)
    dst = np.flatnonzero(ok.ravel())
    sr, scc = src_r.ravel()[dst], src_c.ravel()[dst]
    r0, c0 = sr.astype(np.int64), scc.astype(np.int64)
    fr, fc = (sr - r0).astype(f32), (scc - c0).astype(f32)
    r1, c1 = np.minimum(r0 + 1, s - 1), np.minimum(c0 + 1, s - 1)  # weight is 0 when clamped
    gr, gc = f32(1) - fr, f32(1) - fc
    rows = np.concatenate([dst] * 4)
    cols = np.concatenate([r0 * s + c0, r0 * s + c1, r1 * s + c0, r1 * s + c1])
    vals = np.concatenate([gr * gc, gr * fc, fr * gc, fr * fc]).astype(f32)
    return rows, cols, vals


def _resize_taps(image_dim: int, neuron_dim: int):
    """PINK ``resize``: centre the image on the neuron grid with integer margins."""
    s, d = int(image_dim), int(neuron_dim)
    n = min(s, d)
    sm = (s - d) // 2 if s > d else 0
    dm = (d - s) // 2 if d > s else 0
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rows = ((i + dm) * d + (j + dm)).ravel()
    cols = ((i + sm) * s + (j + sm)).ravel()
    return rows, cols, np.ones(rows.size, np.float32)


def apply_symmetry(y: np.ndarray, flip: int, quarter_turns: int) -> np.ndarray:
    """PINK's symmetry on the last two axes: ``flip^f(rot90cw^q(y))`` (a view).

    ``rotate_90_degrees`` is clockwise (``dst[r, c] = src[D-1-c, r]``), ``flip`` reverses
    the row order; the rotation is applied first.
    """
    z = np.rot90(y, -quarter_turns, axes=(-2, -1))
    return z[..., ::-1, :] if flip else z


def inverse_symmetry(w: np.ndarray, flip: int, quarter_turns: int) -> np.ndarray:
    """Inverse of :func:`apply_symmetry` on the last two axes (a view)."""
    z = w[..., ::-1, :] if flip else w
    return np.rot90(z, quarter_turns, axes=(-2, -1))


@dataclass
class TransformPlan:
    """Precomputed transforms for one geometry (image side, channels, numrot, flip, region).

    Build with :func:`make_plan`; nothing here depends on the SOM weights. The GEMM region
    is the bounding box ``[r0:r1, c0:c1]`` of the union over symmetries ``g`` of
    ``pi_g(M)`` (for the default centred square it is ``M`` itself).
    """

    image_dim: int
    channels: int
    neuron_dim: int
    ed_dim: int
    shape: str
    numrot: int
    flip: bool
    n_base: int  # interpolated base rotations (numrot // 4, or 1)
    symmetries: list  # [(f, q), ...]; g = f * Q + q, PINK k = g * n_base + i
    box: tuple  # (r0, r1, c0, c1) region on the neuron grid
    base_full: list = field(repr=False)  # per base rotation CSR (C*D*D, C*S*S)
    base_region: sp.csr_matrix = field(repr=False)  # (n_base*C*h*w, C*S*S)
    region_masks: np.ndarray | None = field(repr=False, default=None)  # (G, C*h*w) or None
    mask: np.ndarray = field(repr=False, default=None)  # (D, D) bool, distance region M
    compose: np.ndarray = field(repr=False, default=None)  # (G, G): inv_g o S_gn = S_h

    def symmetry_crops(self, y_full: np.ndarray) -> np.ndarray:
        """All symmetries of full-grid base images cropped to the region.

        Parameters
        ----------
        y_full : ndarray, (U, C, D, D)

        Returns
        -------
        ndarray, (U, G, C, h, w): ``out[u, h] = apply_symmetry(y_full[u], h)[box]``.
        """
        r0, r1, c0, c1 = self.box
        u, c = y_full.shape[0], self.channels
        out = np.empty((u, len(self.symmetries), c, r1 - r0, c1 - c0), np.float32)
        for hi, (f, q) in enumerate(self.symmetries):
            out[:, hi] = apply_symmetry(y_full, f, q)[:, :, r0:r1, c0:c1]
        return out

    @property
    def n_transforms(self) -> int:
        """Number of spatial transforms per image (numrot x 2 with flips)."""
        return self.numrot * (2 if self.flip else 1)

    @property
    def symmetric_region(self) -> bool:
        """Region is a centred square without per-symmetry masks, so cropping commutes
        with the quarter turns and the flip (the default quadratic case)."""
        r0, r1, c0, c1 = self.box
        d = self.neuron_dim
        return self.region_masks is None and r0 == c0 and r1 == c1 and r0 == d - r1

    @property
    def region_size(self) -> int:
        """Pixels per base image entering the GEMM (C x h x w)."""
        r0, r1, c0, c1 = self.box
        return self.channels * (r1 - r0) * (c1 - c0)

    def angle_rad(self, k) -> np.ndarray:
        """Rotation angle of transform ``k`` [rad], as PINK's transform file (float32)."""
        step = np.float32(2.0 * np.pi) / np.float32(self.numrot)
        return (np.asarray(k) % self.numrot).astype(np.float32) * step

    def is_flipped(self, k) -> np.ndarray:
        """Whether transform ``k`` includes the flip."""
        return np.asarray(k) // self.numrot == 1

    def base_images(self, x: np.ndarray) -> np.ndarray:
        """Base rotations of a batch on the GEMM region.

        Parameters
        ----------
        x : ndarray, shape (B, C*S*S), float32
            Flattened images.

        Returns
        -------
        ndarray, shape (B, n_base, C*h*w), float32
        """
        y = self.base_region @ x.T  # (n_base*R, B)
        return np.ascontiguousarray(y.T).reshape(x.shape[0], self.n_base, self.region_size)

    def neuron_stack(self, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Symmetry-permuted neurons on the region, shape (N, G, C, h, w), float32.

        ``out[n, g] = inverse_symmetry(w[n], g)[box] * region_mask_g`` so that
        ``||T_k x - w_n||^2_M = ||y_i - out[n, g]||^2`` over ``pi_g(M)``.
        """
        r0, r1, c0, c1 = self.box
        n, c = w.shape[0], self.channels
        if out is None:
            out = np.empty((n, len(self.symmetries), c, r1 - r0, c1 - c0), np.float32)
        for gi, (f, q) in enumerate(self.symmetries):
            out[:, gi] = inverse_symmetry(w, f, q)[:, :, r0:r1, c0:c1]
        if self.region_masks is not None:
            out *= self.region_masks.reshape(1, len(self.symmetries), c, r1 - r0, c1 - c0)
        return out

    def full_transform(self, x: np.ndarray, k: int) -> np.ndarray:
        """Transform ``k`` of one flattened image on the full neuron grid, (C, D, D)."""
        i, g = int(k) % self.n_base, int(k) // self.n_base
        d = self.neuron_dim
        y = (self.base_full[i] @ x).reshape(self.channels, d, d)
        return apply_symmetry(y, *self.symmetries[g])


def make_plan(
    image_dim: int,
    channels: int = 1,
    numrot: int = 360,
    flip: bool = True,
    neuron_dim: int | None = None,
    ed_dim: int | None = None,
    shape: str = "quadratic",
) -> TransformPlan:
    """Precompute (and cache, 8 geometries) the transform plan; see :func:`build_plan`."""
    return _cached_plan(
        int(image_dim), int(channels), int(numrot), bool(flip),
        int(neuron_dim) if neuron_dim else None, int(ed_dim) if ed_dim else None, str(shape),
    )  # fmt: skip


@functools.lru_cache(maxsize=8)
def _cached_plan(*args) -> TransformPlan:
    return build_plan(*args)


def build_plan(
    image_dim: int,
    channels: int = 1,
    numrot: int = 360,
    flip: bool = True,
    neuron_dim: int | None = None,
    ed_dim: int | None = None,
    shape: str = "quadratic",
) -> TransformPlan:
    """Precompute the interpolation matrices and symmetry masks for one geometry.

    Parameters
    ----------
    image_dim : int
        Side of the (square) input images [pixels].
    channels : int
        Number of channels per image.
    numrot : int
        1 or a multiple of 4 (paper 004 Table 2, ``--numrot``).
    flip : bool
        Also use the mirrored transforms (PINK default on; ``--flip-off``).
    neuron_dim, ed_dim : int, optional
        Neuron side and distance-region side [pixels]; PINK defaults when None.
    shape : {"quadratic", "circular"}
        Distance region shape (``--euclidean-distance-shape``).

    Returns
    -------
    TransformPlan
    """
    if numrot < 1 or (numrot != 1 and numrot % 4):
        raise ValueError("numrot must be 1 or a multiple of 4")
    s, c = int(image_dim), int(channels)
    d = int(neuron_dim) if neuron_dim else default_neuron_dim(s, numrot)
    e = int(ed_dim) if ed_dim else default_euclidean_distance_dim(s, numrot, shape)
    mask = distance_mask(d, e, shape)
    dd, ss = d * d, s * s
    n_base = 1 if numrot == 1 else numrot // 4
    quads = [0] if numrot == 1 else [0, 1, 2, 3]
    syms = [(f, q) for f in ((0, 1) if flip else (0,)) for q in quads]
    step = np.float32(2.0 * np.pi) / np.float32(numrot)

    base_full = []
    for i in range(n_base):
        if i == 0:
            rows, cols, vals = _resize_taps(s, d)
        else:
            rows, cols, vals = _base_rotation_taps(s, d, float(np.float32(i) * step))
        rr = np.concatenate([rows + ch * dd for ch in range(c)])
        cc = np.concatenate([cols + ch * ss for ch in range(c)])
        vv = np.tile(vals, c)
        m = sp.csr_matrix((vv, (rr, cc)), shape=(c * dd, c * ss), dtype=np.float32)
        m.sum_duplicates()
        base_full.append(m)

    inv_masks = [np.ascontiguousarray(inverse_symmetry(mask, f, q)) for f, q in syms]
    union = np.logical_or.reduce(inv_masks)
    rr_, cc_ = np.nonzero(union)
    r0, r1, c0, c1 = rr_.min(), rr_.max() + 1, cc_.min(), cc_.max() + 1
    region_masks = np.stack([np.tile(m[r0:r1, c0:c1].ravel(), c) for m in inv_masks]).astype(
        np.float32
    )
    if region_masks.all():
        region_masks = None
    ri, ci = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
    region_idx = np.concatenate([(ri * d + ci).ravel() + ch * dd for ch in range(c)])
    base_region = sp.vstack([m[region_idx] for m in base_full], format="csr").astype(np.float32)
    probe = np.arange(9.0).reshape(3, 3)
    forms = [apply_symmetry(probe, f, q) for f, q in syms]
    compose = np.zeros((len(syms), len(syms)), dtype=np.int64)
    for gn, sym_n in enumerate(syms):
        for g, sym_g in enumerate(syms):
            z = inverse_symmetry(apply_symmetry(probe, *sym_n), *sym_g)
            compose[gn, g] = next(h for h, fm in enumerate(forms) if np.array_equal(fm, z))
    return TransformPlan(
        image_dim=s,
        channels=c,
        neuron_dim=d,
        ed_dim=e,
        shape=shape,
        numrot=int(numrot),
        flip=bool(flip),
        n_base=n_base,
        symmetries=syms,
        box=(int(r0), int(r1), int(c0), int(c1)),
        base_full=base_full,
        base_region=base_region,
        region_masks=region_masks,
        mask=mask,
        compose=compose,
    )
