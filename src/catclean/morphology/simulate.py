"""Synthetic SDSS-like training fields rendered with GalSim (paper 003, Sec. 2).

Each field is a 256 x 256 gri colour JPEG at the SDSS pixel scale (0.396"/pix, 101.4",
Sec. 2.2) with one galaxy at the centre, labelled like the Galaxy Zoo sample (Sec. 2.1):

* **spiral** (class 1): exponential disc with continuous logarithmic-spiral arms
  (m = 2 or 3, pitch 10-30 deg, bluer than the disc, with star-forming knots), a de
  Vaucouleurs bulge whose half-light radius grows towards the blue (colour gradient),
  optional bar (Sersic n = 0.5, axis ratio 0.25-0.4) and, for inclined discs, an optional
  dust lane that absorbs more in g than in i;
* **elliptical** (class 2): Sersic n = 3-5.5, red, with a mild colour gradient.

Neighbour galaxies (Sersic, 0-5), stars (PSF, 0-5), a Moffat PSF (FWHM 1.1-1.7") and
Gaussian sky noise complete the field. Bands are mapped i, r, g -> R, G, B with an
asinh (Lupton et al. 2004) stretch, like SDSS colour images, and JPEG-quantised
(quality 75). Fluxes are in units of the r-band sky noise.

Masks: ``otsu`` (paper Sec. 2.3, :func:`~catclean.morphology.masks.otsu_mask` of the
JPEG) and ``truth`` (pixels where the noiseless, PSF-convolved central galaxy exceeds
``truth_level`` times the r-band noise). Every draw comes from a per-field seed
(``numpy.random.SeedSequence(seed).spawn``).

Bulge, elliptical, neighbours and stars are GalSim profiles; the spiral disc (arms, bar
lane, dust) is evaluated analytically on a 2x oversampled grid and convolved with the
same GalSim PSF image.
"""

from __future__ import annotations

import io

import galsim
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from . import SDSS_PIXSCALE
from .anchors import mask_to_box
from .masks import otsu_mask

BANDS = ("g", "r", "i")
NOISE = {"g": 1.0, "r": 1.0, "i": 1.3}  # sky noise per pixel, r-band noise units


def _colour_ratios(g_r: float, r_i: float) -> np.ndarray:
    """Flux per band relative to r for colours g-r, r-i (mag)."""
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_i)])


def asinh_rgb(g, r, i, stretch: float = 6.0, q: float = 8.0) -> np.ndarray:
    """Lupton et al. (2004) asinh colour image (i, r, g -> R, G, B), uint8."""
    scale = np.array([1.0, 1.1, 1.6])  # R, G, B weights (SDSS-like white balance)
    rgb = np.stack([i, r, g], axis=-1) * scale
    inten = rgb.mean(axis=-1, keepdims=True)
    f = np.arcsinh(q * np.clip(inten, 0, None) / stretch) / q
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(inten > 0, rgb * f / inten, 0.0)
    out = np.clip(out, 0, None)
    peak = np.max(out, axis=-1, keepdims=True)
    out = np.where(peak > 1, out / np.maximum(peak, 1e-12), out)
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def jpeg_quantise(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    """Round-trip an RGB uint8 image through JPEG (PIL), as the SkyServer cutouts are."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _spiral_disc(rng, size, xc, yc, pix, psf_img):
    """Noiseless disc+arms+bar(+dust) of a spiral in g, r, i (numpy, PSF-convolved)."""
    h_arc = rng.uniform(2.5, 6.5)            # disc scale length, arcsec
    h = h_arc / pix
    q = rng.uniform(0.3, 1.0)
    pa = rng.uniform(0, np.pi)
    m = rng.choice([2, 2, 3])
    pitch = np.deg2rad(rng.uniform(10, 30))
    phase = rng.uniform(0, 2 * np.pi)
    chir = rng.choice([-1, 1])
    width = rng.uniform(2.0, 5.0)
    amp = rng.uniform(0.55, 0.9)
    os_ = 2
    sub = (np.arange(size * os_) + 0.5) / os_ - 0.5
    yy, xx = np.meshgrid(sub - yc, sub - xc, indexing="ij")
    xr = xx * np.cos(pa) + yy * np.sin(pa)
    yr = (-xx * np.sin(pa) + yy * np.cos(pa)) / q
    r = np.hypot(xr, yr) + 1e-3
    th = chir * np.arctan2(yr, xr)
    disc = np.exp(-r / h)
    arm_phase = m * (th - np.log(r / h) / np.tan(pitch) - phase)
    arms = (0.5 * (1 + np.cos(arm_phase))) ** width
    onset = 1 - np.exp(-(r / (0.6 * h)) ** 2)
    # star-forming knots along the arms
    knots = np.zeros_like(r)
    ny = r.shape[0]
    for _ in range(rng.integers(4, 14)):
        rk = rng.uniform(0.7, 2.5) * h
        # on an arm: the arm phase is zero at th = ln(r / h) / tan(pitch) + phase + 2 pi j / m
        thk = np.log(rk / h) / np.tan(pitch) + phase + 2 * np.pi * rng.integers(m) / m
        kx, ky = rk * np.cos(thk), chir * rk * np.sin(thk) * q
        # back to the sky frame (sub-pixel grid), as a point to be smoothed below
        sx = kx * np.cos(pa) - ky * np.sin(pa) + xc
        sy = kx * np.sin(pa) + ky * np.cos(pa) + yc
        iy, ix = int(round((sy + 0.5) * os_ - 0.5)), int(round((sx + 0.5) * os_ - 0.5))
        if 0 <= iy < ny and 0 <= ix < ny:
            knots[iy, ix] += rng.uniform(0.5, 1.5)
    knots = gaussian_filter(knots, sigma=0.9 / pix * os_) * (2 * np.pi * (0.9 / pix) ** 2)
    smooth = disc * (1 - amp * onset)
    armimg = disc * amp * onset * arms * 2.5 + 0.15 * knots * np.exp(-r / (2 * h))
    bar = np.zeros_like(r)
    if rng.uniform() < 0.35:
        bl = rng.uniform(0.8, 1.6) * h
        bq = rng.uniform(0.25, 0.4)
        bar = 0.6 * np.exp(-((xr / bl) ** 2 + (yr / (bl * bq)) ** 2) ** 1.0)
    dust = np.ones_like(r)
    dust_tau = 0.0
    if q < 0.5 and rng.uniform() < 0.6:
        dust_tau = rng.uniform(0.5, 1.2)
        lane = np.exp(-(yr * q / (0.12 * h)) ** 2 / 2) * np.exp(-r / (3 * h))
        dust = lane
    col_disc = _colour_ratios(rng.uniform(0.45, 0.65), rng.uniform(0.2, 0.3))
    col_arm = _colour_ratios(rng.uniform(0.15, 0.35), rng.uniform(0.05, 0.15))
    col_bar = _colour_ratios(0.75, 0.35)
    tau_band = np.array([1.3, 1.0, 0.75]) * dust_tau
    out = []
    for b in range(3):
        img = smooth * col_disc[b] + armimg * col_arm[b] + bar * col_bar[b]
        img = img * np.exp(-tau_band[b] * dust) if dust_tau else img
        img = img.reshape(size, os_, size, os_).mean(axis=(1, 3))
        out.append(fftconvolve(img, psf_img[b], mode="same"))
    out = np.array(out)
    return out / out[1].sum(), {"h_arcsec": h_arc, "q": q, "arms_m": int(m),
                                "pitch_deg": float(np.rad2deg(pitch)),
                                "bar": bool(bar.any()), "dust_tau": float(dust_tau)}


def _draw(obj, size, pix, offset):
    img = galsim.ImageF(size, size, scale=pix)
    obj.drawImage(image=img, offset=offset, method="auto")
    return img.array.astype(np.float64)


def _add_stamp(field, obj, flux, pos, pix, point=False, stamp=64):
    """Draw ``obj`` with ``flux`` centred at 0-indexed ``pos`` (x, y) into ``field``.

    A star (``point``) is the PSF evaluated in real space (``no_pixel``: the Moffat is
    several pixels wide, so pixel integration changes little and FFTs are avoided).
    """
    full = galsim.ImageD(field, scale=pix, xmin=1, ymin=1)
    img = (obj * flux).drawImage(nx=stamp, ny=stamp, scale=pix,
                                 method="no_pixel" if point else "auto",
                                 center=galsim.PositionD(pos[0] + 1, pos[1] + 1))
    b = img.bounds & full.bounds
    if b.isDefined():
        full[b] += img[b]


def render_field(seed, cls: int, size: int = 256, pixscale: float = SDSS_PIXSCALE,
                 truth_level: float = 1.0, jpeg_quality: int = 75) -> dict:
    """Render one field.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        Seed of every draw of this field.
    cls : int
        1 = spiral, 2 = elliptical (central galaxy).
    size : int
        Field side (pixels; paper: 256).
    pixscale : float
        arcsec / pixel (paper: 0.396127).
    truth_level : float
        Truth-mask threshold in units of the r-band sky noise (default 1 sigma).
    jpeg_quality : int
        JPEG quality of the quantisation.

    Returns
    -------
    dict
        ``image`` (size, size, 3) uint8; ``model`` (3, size, size) noiseless central
        galaxy (g, r, i); ``truth_mask`` and ``otsu_mask`` (size, size) bool;
        ``centre`` (x, y) of the central galaxy in 0-indexed pixels; ``meta`` dict.
    """
    rng = np.random.default_rng(seed)
    pix = pixscale
    fwhm = rng.uniform(1.1, 1.7)
    psfs = [galsim.Moffat(beta=3.0, fwhm=fwhm * f, trunc=6 * fwhm)
            for f in (1.06, 1.0, 0.96)]
    psf_img = []
    for p in psfs:
        im = _draw(p, 41, pix, (0, 0))
        psf_img.append(im / im.sum())
    off = rng.uniform(-0.5, 0.5, 2)
    xc = (size - 1) / 2 + off[0]
    yc = (size - 1) / 2 + off[1]
    flux_r = 10 ** rng.uniform(3.8, 4.6)
    meta = {"cls": int(cls), "psf_fwhm_arcsec": float(fwhm), "flux_r": float(flux_r)}
    if cls == 1:
        disc, dmeta = _spiral_disc(rng, size, xc, yc, pix, psf_img)
        meta.update(dmeta)
        bt = rng.uniform(0.05, 0.35)
        rb = rng.uniform(0.25, 0.5) * dmeta["h_arcsec"] * 1.68
        colb = _colour_ratios(rng.uniform(0.7, 0.85), rng.uniform(0.35, 0.45))
        model = np.zeros((3, size, size))
        for b, grad in enumerate((1.25, 1.0, 0.9)):
            bulge = galsim.DeVaucouleurs(half_light_radius=max(rb * grad, 0.3), flux=1.0)
            bimg = _draw(galsim.Convolve(bulge, psfs[b]), size, pix, tuple(off))
            model[b] = flux_r * ((1 - bt) * disc[b] + bt * colb[b] * bimg)
        meta["bulge_to_total"] = float(bt)
    else:
        n = round(rng.uniform(3.0, 5.5) * 4) / 4
        re = rng.uniform(2.0, 7.0)
        q = rng.uniform(0.5, 1.0)
        beta = rng.uniform(0, 180) * galsim.degrees
        col = _colour_ratios(rng.uniform(0.72, 0.88), rng.uniform(0.36, 0.46))
        model = np.zeros((3, size, size))
        for b, grad in enumerate((1.1, 1.0, 0.95)):
            gal = galsim.Sersic(n=n, half_light_radius=re * grad, flux=1.0,
                                trunc=0).shear(q=q, beta=beta)
            model[b] = flux_r * col[b] * _draw(galsim.Convolve(gal, psfs[b]), size, pix,
                                               tuple(off))
        meta.update({"sersic_n": n, "re_arcsec": re, "q": q})
    truth = model[1] > truth_level * NOISE["r"]
    # neighbours and stars, away from the central galaxy's footprint
    extent = max(np.sqrt(truth.sum() / np.pi), 8.0)
    scene = model.copy()
    n_nb, n_st = rng.integers(0, 6), rng.integers(0, 6)
    for k in range(n_nb + n_st):
        for _ in range(20):
            p = rng.uniform(4, size - 4, 2)
            if np.hypot(p[0] - xc, p[1] - yc) > 1.3 * extent + 6:
                break
        if k < n_nb:
            gal = galsim.Sersic(n=rng.choice([1.0, 1.5, 2.5, 4.0]),
                                half_light_radius=rng.uniform(0.5, 2.5), flux=1.0
                                ).shear(q=rng.uniform(0.3, 1), beta=rng.uniform(0, 180) *
                                        galsim.degrees)
            f = 10 ** rng.uniform(2.3, 3.8)
            col = _colour_ratios(rng.uniform(0.3, 1.0), rng.uniform(0.1, 0.5))
        else:
            gal = None  # star: the PSF itself
            f = 10 ** rng.uniform(2.0, 4.5)
            col = _colour_ratios(rng.uniform(0.2, 1.4), rng.uniform(0.0, 0.8))
        for b in range(3):
            obj = psfs[b] if gal is None else galsim.Convolve(gal, psfs[b])
            _add_stamp(scene[b], obj, f * col[b], p, pix, gal is None)
    noisy = scene + np.array([NOISE[b] for b in BANDS])[:, None, None] * rng.standard_normal(
        scene.shape)
    image = jpeg_quantise(asinh_rgb(noisy[0], noisy[1], noisy[2]), jpeg_quality)
    meta.update({"n_neighbours": int(n_nb), "n_stars": int(n_st)})
    return {"image": image, "model": model.astype(np.float32), "truth_mask": truth,
            "otsu_mask": otsu_mask(image), "centre": np.array([xc, yc]), "meta": meta}


def _render_args(args):
    return render_field(*args)


def simulate_fields(n: int, seed: int = 0, size: int = 256,
                    pixscale: float = SDSS_PIXSCALE, truth_level: float = 1.0,
                    n_jobs: int = 1) -> dict:
    """A balanced set of ``n`` fields (half spiral, half elliptical, shuffled).

    Every field has its own seed, so the result does not depend on ``n_jobs`` (worker
    processes).

    Returns
    -------
    dict of ndarray
        ``images`` (n, size, size, 3) uint8, ``classes`` (n,) int (1 spiral, 2
        elliptical), ``otsu_masks`` / ``truth_masks`` (n, size, size) bool, ``centres``
        (n, 2) (x, y) pixels, ``otsu_boxes`` / ``truth_boxes`` (n, 4) pixels, ``field_id``
        (n,) int, ``meta`` list of dicts.
    """
    ss = np.random.SeedSequence(seed)
    classes = np.array([1 + (i % 2) for i in range(n)])
    classes = np.random.default_rng(ss.spawn(1)[0]).permutation(classes)
    child = ss.spawn(n + 1)[1:]
    out = {k: [] for k in ("images", "otsu_masks", "truth_masks", "centres", "meta")}
    args = [(child[i], int(classes[i]), size, pixscale, truth_level) for i in range(n)]
    if n_jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(n_jobs) as ex:
            rendered = list(ex.map(_render_args, args, chunksize=4))
    else:
        rendered = map(_render_args, args)
    for f in rendered:
        out["images"].append(f["image"])
        out["otsu_masks"].append(f["otsu_mask"])
        out["truth_masks"].append(f["truth_mask"])
        out["centres"].append(f["centre"])
        out["meta"].append(f["meta"])
    res = {k: np.array(v) for k, v in out.items() if k != "meta"}
    res["meta"] = out["meta"]
    res["classes"] = classes
    res["field_id"] = np.arange(n)
    res["otsu_boxes"] = np.array([mask_to_box(m) for m in res["otsu_masks"]])
    res["truth_boxes"] = np.array([mask_to_box(m) for m in res["truth_masks"]])
    return res


def galaxy_free_fields(n: int, seed: int = 0, stars: bool = False, size: int = 256,
                       pixscale: float = SDSS_PIXSCALE, min_distance: float = 30.0
                       ) -> np.ndarray:
    """Fields without a galaxy, for the no-galaxy check of the evaluation.

    Parameters
    ----------
    n : int
        Number of fields.
    seed : int
        Seed of every draw.
    stars : bool
        False: sky noise only; True: 1-5 stars (Moffat PSF, FWHM 1.1-1.7", r flux
        10^2-10^4.5 in sky-noise units as the training fields' stars), none closer than
        ``min_distance`` pixels to the centre.
    size, pixscale : int, float
        Field side (pixels) and arcsec / pixel.

    Returns
    -------
    ndarray (n, size, size, 3) uint8
        gri JPEG fields made like :func:`render_field`'s (same noise, stretch, quality).
    """
    rng = np.random.default_rng(seed)
    c = (size - 1) / 2
    out = []
    for _ in range(n):
        scene = np.zeros((3, size, size))
        if stars:
            fwhm = rng.uniform(1.1, 1.7)
            for _ in range(int(rng.integers(1, 6))):
                p = rng.uniform(4, size - 4, 2)
                while np.hypot(p[0] - c, p[1] - c) < min_distance:
                    p = rng.uniform(4, size - 4, 2)
                f = 10 ** rng.uniform(2.0, 4.5)
                col = _colour_ratios(rng.uniform(0.2, 1.4), rng.uniform(0.0, 0.8))
                for b, fb in enumerate((1.06, 1.0, 0.96)):
                    psf = galsim.Moffat(beta=3.0, fwhm=fwhm * fb, trunc=6 * fwhm)
                    _add_stamp(scene[b], psf, f * col[b], p, pixscale, True)
        noise = np.array([NOISE[b] for b in BANDS])[:, None, None]
        noisy = scene + noise * rng.standard_normal(scene.shape)
        out.append(jpeg_quantise(asinh_rgb(noisy[0], noisy[1], noisy[2])))
    return np.array(out)


def split_fields(n: int, fractions=(4 / 6, 1 / 6, 1 / 6), seed: int = 0,
                 classes=None) -> dict:
    """Train / val / test indices by field (paper Sec. 2.1: 8000 / 2000 / 2000).

    With ``classes`` the split is stratified, so every subset is balanced between spirals
    and ellipticals as in the paper; otherwise a seeded permutation of field indices.
    """
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if classes is None else [
        np.flatnonzero(np.asarray(classes) == c) for c in np.unique(classes)]
    out = {"train": [], "val": [], "test": []}
    for g in groups:
        perm = rng.permutation(g)
        n_tr = int(round(fractions[0] * len(g)))
        n_va = int(round(fractions[1] * len(g)))
        out["train"].append(perm[:n_tr])
        out["val"].append(perm[n_tr:n_tr + n_va])
        out["test"].append(perm[n_tr + n_va:])
    return {k: np.sort(np.concatenate(v)).astype(int) for k, v in out.items()}


def subset(fields: dict, idx) -> dict:
    """Fields ``idx`` of a :func:`simulate_fields` result."""
    idx = np.asarray(idx)
    return {k: ([v[i] for i in idx] if isinstance(v, list) else v[idx])
            for k, v in fields.items()}
