"""Artificial blends of galaxy pairs (paper 002 Sec. 2.2) and the split by galaxy (Sec. 2.3).

Rules (Sec. 2.2, as in candels-blender):

- the *central* galaxy is drawn at random and sits at the stamp centre;
- the *companion* is drawn among the galaxies with ``|mag_cen - mag_comp| < max_dmag``
  (2 in the paper; magnitudes are the isolated Kron magnitudes);
- with ``R = max(R_cen, R_comp)`` (semi-major effective radii in pixels) the separation is
  drawn uniformly in ``[min_sep_R * R, max_sep_frac * stamp / 2]`` (0.5 R and half the
  stamp in the paper), at a uniform position angle, rounded to whole pixels;
- the blend is the pixel sum of the central stamp and the shifted companion stamp.

Galaxies are split into train and test sets *before* pairing (Sec. 2.3), so no test
galaxy appears in a training blend. All draws come from one ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np

from . import MORPHOLOGIES
from .galaxies import GalaxySet


def split_galaxies(gal_ids: np.ndarray, test_fraction: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random train / test split of galaxy ids (Sec. 2.3: test galaxies set aside first)."""
    ids = rng.permutation(np.asarray(gal_ids))
    n_test = max(2, int(round(test_fraction * len(ids))))
    if len(ids) - n_test < 2:
        raise ValueError(f"need at least 4 usable galaxies to split, got {len(ids)}")
    return np.sort(ids[n_test:]), np.sort(ids[:n_test])


def draw_pairs(table, ids: np.ndarray, n_blends: int, stamp: int, rng: np.random.Generator,
               max_dmag: float = 2.0, min_sep_R: float = 0.5, max_sep_frac: float = 1.0
               ) -> dict[str, np.ndarray]:
    """Draw ``n_blends`` (central, companion, shift) triples among galaxies ``ids``.

    Returns a dict of arrays: ``cen``, ``comp`` (galaxy ids), ``dx``, ``dy`` (integer pixel
    shift of the companion, +x right, +y down in array order), ``sep_pix``, ``R_pix``.
    """
    mag = table["mag_iso"].to_numpy()
    Rp = table["R_pix"].to_numpy()
    ids = np.asarray(ids)
    half = stamp / 2.0
    hi = max_sep_frac * half
    cen = np.empty(n_blends, dtype=np.int64)
    comp = np.empty(n_blends, dtype=np.int64)
    for i in range(n_blends):
        for _ in range(100):
            c = ids[rng.integers(len(ids))]
            cand = ids[(np.abs(mag[ids] - mag[c]) < max_dmag) & (ids != c)]
            if len(cand):
                break
        else:
            raise ValueError("no galaxy pair satisfies |dmag| < max_dmag; widen the range")
        cen[i] = c
        comp[i] = cand[rng.integers(len(cand))]
    R = np.maximum(Rp[cen], Rp[comp])
    lo = np.minimum(min_sep_R * R, hi)
    s = rng.uniform(lo, hi)
    th = rng.uniform(0.0, 2 * np.pi, n_blends)
    lim = int(np.floor(half))
    dx = np.clip(np.rint(s * np.cos(th)), -lim, lim).astype(np.int64)
    dy = np.clip(np.rint(s * np.sin(th)), -lim, lim).astype(np.int64)
    return {"cen": cen, "comp": comp, "dx": dx, "dy": dy,
            "sep_pix": np.hypot(dx, dy), "R_pix": R}


def render_blends(gals: GalaxySet, pairs: dict, stamp: int) -> dict[str, np.ndarray]:
    """Sum central and shifted companion stamps; crop masks the same way.

    Returns ``images`` (n, stamp, stamp) float32 (nanomaggies / pixel) and ``masks``
    (n, stamp, stamp, 2) uint8 (central, companion segmentation maps).
    """
    n = len(pairs["cen"])
    size = gals.images.shape[1]
    if size < 2 * stamp:
        raise ValueError(f"isolated stamps ({size} px) must be at least twice the blend "
                         f"stamp ({stamp} px)")
    o = size // 2 - stamp // 2  # top-left of the centred window
    images = np.empty((n, stamp, stamp), dtype=np.float32)
    masks = np.empty((n, stamp, stamp, 2), dtype=np.uint8)
    for i in range(n):
        c, k = pairs["cen"][i], pairs["comp"][i]
        dx, dy = int(pairs["dx"][i]), int(pairs["dy"][i])
        cy, cx = o - dy, o - dx
        images[i] = (gals.images[c, o:o + stamp, o:o + stamp]
                     + gals.images[k, cy:cy + stamp, cx:cx + stamp])
        masks[i, ..., 0] = gals.masks[c, o:o + stamp, o:o + stamp]
        masks[i, ..., 1] = gals.masks[k, cy:cy + stamp, cx:cx + stamp]
    return {"images": images, "masks": masks}


def make_blend_set(gals: GalaxySet, ids: np.ndarray, n_blends: int, stamp: int,
                   rng: np.random.Generator, **rules) -> dict[str, np.ndarray]:
    """Pairs + rendered blends + per-blend truth, as one dict of arrays (npz-ready).

    Keys: ``images``, ``masks``, ``flux`` (n, 2) isolated Kron fluxes (central,
    companion; nanomaggies), ``mag`` (n, 2), ``flux_model`` (n, 2), ``R_each`` (n, 2)
    pixels, ``morph`` (n, 2) index into :data:`MORPHOLOGIES`, ``gal_id`` (n, 2), ``dx``,
    ``dy``, ``sep_pix``, ``R_pix`` (= max of the two), ``comp_xy`` (n, 2) companion centre
    (x, y) in 0-based pixels.
    """
    tab = gals.table
    pairs = draw_pairs(tab, ids, n_blends, stamp, rng, **rules)
    out = render_blends(gals, pairs, stamp)
    both = np.column_stack([pairs["cen"], pairs["comp"]])
    morph_idx = {m: i for i, m in enumerate(MORPHOLOGIES)}
    morph = np.vectorize(morph_idx.get)(tab["morph"].astype(str).to_numpy())
    c0 = (stamp - 1) / 2.0
    out.update(
        flux=tab["flux_iso"].to_numpy()[both],
        mag=tab["mag_iso"].to_numpy()[both],
        flux_model=tab["flux_model"].to_numpy()[both],
        R_each=tab["R_pix"].to_numpy()[both],
        morph=morph[both].astype(np.int64),
        gal_id=both,
        dx=pairs["dx"], dy=pairs["dy"], sep_pix=pairs["sep_pix"], R_pix=pairs["R_pix"],
        comp_xy=np.column_stack([c0 + pairs["dx"], c0 + pairs["dy"]]).astype(np.float64),
    )
    return out
