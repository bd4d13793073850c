"""Synthetic CFHT MegaCam exposures with the five quality classes of paper 000 (Sec. 2).

A MegaCam exposure is a multi-extension FITS file (paper Sec. 2): a primary header and
36 (or 40) CCD extensions of 2048x4612 pixels at ~0.187 arcsec/pixel, stored as unsigned
16-bit integers (``BZERO=32768``) that saturate at 65535 ADU. This module renders such
files with GalSim:

* stars: Kolmogorov or Moffat atmospheric PSF (with a small optical ellipticity),
  convolved with the tracking trail (a thin box) or a defocus donut (an annulus, the
  geometric image of the obscured pupil), drawn at sub-pixel offsets; magnitudes from a
  power-law number count; saturation with vertical charge bleeding;
* galaxies: Sersic profiles (n, half-light radius and ellipticity drawn per object)
  convolved with the same PSF;
* sky: a level from the sky surface brightness, the zeropoint and EXPTIME, multiplied by
  a transparency (clouds), Poisson noise in electrons plus read noise;
* the quality problems of the classes: Good, RBT (severe tracking trails, 2.5-12
  arcsec), BT (mild trails, 0.6-1.8 arcsec), B-Seeing (FWHM 1.2-2.5 arcsec, or a
  defocus donut, often with cloud extinction), BGP (background gradients, fringes,
  scattered-light rings/glows, row banding and amplifier steps, in focal-plane
  coordinates so that a pattern is continuous across the mosaic);
* dead CCDs (all zero) drawn independently of the class.

All randomness comes from ``numpy.random.default_rng([seed, exposure_index])``; GalSim is
used only as a deterministic renderer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import CLASSES

# MegaCam-like photometric constants (r' band, Elixir-processed images)
ZEROPOINT = 26.2          # mag giving 1 ADU/s
GAIN = 1.6                # e-/ADU
READ_NOISE_E = 5.0        # e-
SATURATION = 65535.0      # ADU (16-bit)
DEG2_PER_PIX = (0.187 / 3600.0) ** 2


@dataclass
class SimConfig:
    """Rendering parameters: the keys of a preset's ``simulate`` section (defaults and
    meaning in ``workflow/schemas/qa.schema.yaml``).

    Attributes
    ----------
    n_ccd : int
        CCDs per exposure (36 as in early MegaCam, 40 with the new filters, fewer for tests).
    ccd_shape : tuple of int
        (ny, nx) pixels per CCD; MegaCam is (4612, 2048).
    pixel_scale : float
        arcsec per pixel (0.187).
    p_dead_ccd : float
        Probability that a CCD is dead (all zero), independent per CCD.
    short_exposure_fraction : float
        Fraction of exposures with EXPTIME < 30 s (log-uniform in 1-30 s).
    short_exposure_fraction_train : float or None
        The same fraction for the *training* exposures only (None: the same as the test
        exposures). Short exposures have few sources per CCD and are the hardest to grade;
        drawing more of them for training (stratified sampling of the rare regime) keeps
        the held-out test distribution unchanged.
    star_density : tuple of float
        Range (log-uniform per exposure) of the density of stars brighter than r=24, per deg^2.
    galaxy_density : float
        Density of galaxies brighter than r=25 per deg^2.
    """

    n_ccd: int
    ccd_shape: tuple
    pixel_scale: float
    p_dead_ccd: float
    short_exposure_fraction: float
    short_exposure_fraction_train: float | None
    star_density: tuple
    galaxy_density: float

    @classmethod
    def from_dict(cls, d: dict) -> SimConfig:
        """From a complete ``simulate`` section (other keys, e.g. ``n_batches``, ignored)."""
        keep = {k: d[k] for k in cls.__dataclass_fields__}
        for k in ("ccd_shape", "star_density"):
            keep[k] = tuple(keep[k])
        return cls(**keep)


@dataclass
class ExposureParams:
    """Physical parameters of one exposure (all drawn from the exposure's generator)."""

    expid: int
    label: str
    exptime: float                       # s
    fwhm: float                          # arcsec, atmospheric seeing
    psf_kind: str                        # 'kolmogorov' or 'moffat'
    moffat_beta: float
    psf_e1: float                        # optical PSF shear
    psf_e2: float
    trail_length: float                  # arcsec
    trail_angle: float                   # radians
    defocus_radius: float                # arcsec, outer radius of the donut (0: in focus)
    defocus_ratio: float                 # inner/outer radius of the donut
    transparency: float                  # 1 = photometric
    sky_mag: float                       # mag/arcsec^2
    star_density: float                  # deg^-2, r < 24
    bgp: dict = field(default_factory=dict)   # pattern name -> parameters
    dead_ccds: list = field(default_factory=list)
    # per CCD: robust half-range of the background-problem pattern, as a fraction of the
    # sky (filled by render_exposure; 0 for the CCDs the pattern does not reach)
    bgp_ccd_amp: list = field(default_factory=list)


def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def draw_exposure_params(expid: int, label: str, rng: np.random.Generator,
                         cfg: SimConfig, split: str = "test") -> ExposureParams:
    """Draw the physical parameters of one exposure of class ``label``.

    The distributions follow the paper's class descriptions (Sec. 2, 4.1, 6): MegaCam's
    median delivered seeing is ~0.7 arcsec; BT and RBT differ by trail length;
    B-Seeing is either wide seeing or poor focus (donut PSF, Sec. 6); BGP has sources
    like a Good exposure but a patterned background.
    """
    if label not in CLASSES:
        raise ValueError(f"unknown quality class {label!r}; expected one of {CLASSES}")
    short = cfg.short_exposure_fraction
    if split == "train" and cfg.short_exposure_fraction_train is not None:
        short = cfg.short_exposure_fraction_train
    if rng.uniform() < short:
        exptime = round(_loguniform(rng, 1.0, 29.0), 1)
    else:
        exptime = float(rng.choice([60.0, 120.0, 180.0, 300.0, 345.0, 450.0, 600.0]))
    fwhm = float(np.clip(rng.lognormal(np.log(0.72), 0.17), 0.45, 1.1))
    e_opt = abs(rng.normal(0.0, 0.025))
    phi = rng.uniform(0, np.pi)
    trail = abs(rng.normal(0.0, 0.08))      # guiding jitter of a good exposure
    defocus_r, defocus_q = 0.0, 0.0
    transparency = 1.0 if rng.uniform() < 0.85 else float(10 ** (-0.4 * rng.uniform(0.0, 0.3)))
    bgp: dict = {}
    if label == "RBT":
        trail = _loguniform(rng, 2.5, 12.0)
        fwhm = float(np.clip(rng.lognormal(np.log(0.8), 0.2), 0.45, 1.4))
    elif label == "BT":
        trail = rng.uniform(0.6, 1.8)
    elif label == "B-Seeing":
        if rng.uniform() < 0.35:             # poor focus: donut PSF
            defocus_r = rng.uniform(1.0, 3.0)
            defocus_q = rng.uniform(0.3, 0.45)
            fwhm = float(np.clip(rng.lognormal(np.log(0.8), 0.15), 0.5, 1.2))
        else:                                # poor seeing
            fwhm = _loguniform(rng, 1.25, 2.6)
        if rng.uniform() < 0.5:              # poor visibility (clouds)
            transparency = float(10 ** (-0.4 * rng.uniform(0.2, 1.5)))
    elif label == "BGP":
        kinds = ["gradient", "fringes", "scattered", "banding"]
        chosen = rng.choice(kinds, size=1 + int(rng.uniform() < 0.35), replace=False)
        for kind in chosen:
            bgp[str(kind)] = _draw_bgp(str(kind), rng, cfg.n_ccd)
    angle = float(rng.normal(0.0, 0.15) + (0.0 if rng.uniform() < 0.7 else np.pi / 2))
    dead = [int(i) for i in np.flatnonzero(rng.uniform(size=cfg.n_ccd) < cfg.p_dead_ccd)]
    return ExposureParams(
        expid=int(expid), label=label, exptime=float(exptime), fwhm=float(fwhm),
        psf_kind="kolmogorov" if rng.uniform() < 0.5 else "moffat",
        moffat_beta=float(rng.uniform(2.8, 4.5)),
        psf_e1=float(e_opt * np.cos(2 * phi)), psf_e2=float(e_opt * np.sin(2 * phi)),
        trail_length=float(trail), trail_angle=angle,
        defocus_radius=float(defocus_r), defocus_ratio=float(defocus_q),
        transparency=float(transparency), sky_mag=float(rng.uniform(19.6, 21.3)),
        star_density=_loguniform(rng, *cfg.star_density), bgp=bgp, dead_ccds=dead,
    )


def mosaic_footprint(n_ccd: int) -> tuple[float, float, float, float]:
    """(u_min, u_max, v_min, v_max) of the focal-plane area covered by the first ``n_ccd``
    CCDs, in the [-1, 1] mosaic coordinates of :func:`background_pattern`."""
    pos = np.array([mosaic_position(k, n_ccd) for k in range(n_ccd)])
    u = (np.array([pos[:, 0].min(), pos[:, 0].max() + 1.0]) - 4.5) / 4.5
    v = (np.array([pos[:, 1].min(), pos[:, 1].max() + 1.0]) - 2.0) / 4.5
    return float(u[0]), float(u[1]), float(v[0]), float(v[1])


def _draw_bgp(kind: str, rng: np.random.Generator, n_ccd: int = 36) -> dict:
    """Parameters of one background problem; amplitudes are fractions of the sky level."""
    if kind == "gradient":        # moon / twilight scattered light across the mosaic
        # amplitude across the whole mosaic: 0.6-2 x sky, i.e. 7-20% of sky within a CCD
        return {"amp": rng.uniform(0.6, 2.0), "angle": rng.uniform(0, 2 * np.pi),
                "curv": rng.uniform(-0.3, 0.3)}
    if kind == "fringes":         # thin-CCD interference fringes (i', z' bands)
        return {"amp": rng.uniform(0.04, 0.12), "wavelength": rng.uniform(50.0, 160.0),
                "angle": rng.uniform(0, np.pi), "warp": rng.uniform(0.5, 2.5),
                "phase": rng.uniform(0, 2 * np.pi)}
    if kind == "scattered":       # out-of-focus ghost ring / glow from a bright star
        # centred on the simulated CCDs (fewer than 36 in small configurations), so that the
        # ring or glow of a BGP exposure falls on the data it is judged from
        u_lo, u_hi, v_lo, v_hi = mosaic_footprint(n_ccd)
        return {"amp": rng.uniform(0.15, 0.5), "u0": rng.uniform(u_lo, u_hi),
                "v0": rng.uniform(v_lo, v_hi), "radius": rng.uniform(0.15, 0.7),
                "width": rng.uniform(0.03, 0.15), "ring": bool(rng.uniform() < 0.6)}
    if kind == "banding":         # amplifier steps and correlated row noise
        return {"amp_step": rng.uniform(0.04, 0.12), "row_amp": rng.uniform(0.02, 0.06),
                "row_scale": rng.uniform(3.0, 30.0), "seed": int(rng.integers(2**31))}
    raise ValueError(kind)


def mosaic_position(ccd: int, n_ccd: int) -> tuple[float, float]:
    """(column, row) of a CCD in the focal plane: 4 rows of 9, the 40-CCD extras at the ends
    of the two middle rows."""
    if ccd < 36:
        return float(ccd % 9), float(ccd // 9)
    extra = [(-1.0, 1.0), (-1.0, 2.0), (9.0, 1.0), (9.0, 2.0)]
    return extra[ccd - 36]


def _mosaic_uv(ccd: int, shape: tuple, n_ccd: int):
    """Focal-plane coordinates (u, v) of the pixels of one CCD, [-1, 1] over the 9x4
    mosaic (broadcastable (1, nx) and (ny, 1) float32 arrays)."""
    ny, nx = shape
    col, row = mosaic_position(ccd, n_ccd)
    u = ((col + np.arange(nx, dtype=np.float32)[None, :] / nx) - 4.5) / 4.5
    v = ((row + np.arange(ny, dtype=np.float32)[:, None] / ny) - 2.0) / 4.5
    return u, v


def _base_gradient(params: ExposureParams, ccd: int, shape: tuple, n_ccd: int) -> np.ndarray:
    """The faint (<~1.5% across the mosaic) large-scale sky gradient of every exposure."""
    u, v = _mosaic_uv(ccd, shape, n_ccd)
    base = 0.015 * ((params.expid * 7919) % 97) / 97.0
    return (np.float32(base) * (u * 0.6 + v * 0.8)).astype(np.float32)


def background_pattern(params: ExposureParams, ccd: int, shape: tuple, n_ccd: int
                       ) -> np.ndarray:
    """Fractional sky modulation of one CCD by the exposure's background problems
    (multiply by the sky level), float32; zero unless the exposure is BGP. The faint
    gradient every exposure has is :func:`_base_gradient`, added by the renderer.

    Coordinates (u, v) span [-1, 1] over the 9x4 mosaic so that gradients and
    scattered-light rings are continuous across CCDs, as in real exposures.
    """
    ny, nx = shape
    col, row = mosaic_position(ccd, n_ccd)
    u, v = _mosaic_uv(ccd, shape, n_ccd)
    xx = np.arange(nx, dtype=np.float32)[None, :]
    yy = np.arange(ny, dtype=np.float32)[:, None]
    g = params.bgp.get("gradient")
    out = np.zeros(shape, np.float32)
    if g:
        t = u * math.cos(g["angle"]) + v * math.sin(g["angle"])
        out += np.float32(g["amp"] * 0.5) * (t + np.float32(g["curv"]) * t * t)
    f = params.bgp.get("fringes")
    if f:
        k = 2 * np.pi / f["wavelength"]
        # pixel-scale wavelength; the warp makes the curved, wavy fringe pattern
        gx = xx + col * nx
        gy = yy + row * ny
        ph = k * (gx * math.cos(f["angle"]) + gy * math.sin(f["angle"]))
        warp = f["warp"] * np.sin(gx / (3.1 * f["wavelength"]) + np.cos(gy / (2.3 * f["wavelength"])))
        out += np.float32(f["amp"]) * np.sin(ph + warp + f["phase"]).astype(np.float32)
    s = params.bgp.get("scattered")
    if s:
        r = np.sqrt((u - s["u0"]) ** 2 + (v - s["v0"]) ** 2)
        if s["ring"]:
            out += np.float32(s["amp"]) * np.exp(-0.5 * ((r - s["radius"]) / s["width"]) ** 2)
        else:
            out += np.float32(s["amp"]) * np.exp(-0.5 * (r / s["radius"]) ** 2)
    b = params.bgp.get("banding")
    if b:
        brng = np.random.default_rng([b["seed"], ccd])
        steps = brng.normal(0.0, 1.0, ny + 200)
        kern = np.exp(-0.5 * (np.arange(-60, 61) / b["row_scale"]) ** 2)
        rows = np.convolve(steps, kern / np.sqrt((kern ** 2).sum()), mode="same")[100:100 + ny]
        out += np.float32(b["row_amp"]) * rows.astype(np.float32)[:, None]
        amp_sign = 1.0 if brng.uniform() < 0.5 else -1.0
        out[:, nx // 2:] += np.float32(amp_sign * b["amp_step"])
    return out


def pattern_amplitude(pattern: np.ndarray) -> float:
    """Robust half-range (99th - 1st percentile) / 2 of a fractional sky pattern, from
    every 4th pixel in both axes: how strongly a background problem shows on one CCD."""
    sub = np.asarray(pattern)[::4, ::4]
    lo, hi = np.percentile(sub, [1.0, 99.0])
    return float(0.5 * (hi - lo))


def _psf(params: ExposureParams):
    """The GalSim PSF of the exposure (atmosphere x optics x tracking/defocus)."""
    import galsim

    gsp = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3,
                          maximum_fft_size=16384)
    if params.psf_kind == "kolmogorov":
        atm = galsim.Kolmogorov(fwhm=params.fwhm, gsparams=gsp)
    else:
        atm = galsim.Moffat(beta=params.moffat_beta, fwhm=params.fwhm, gsparams=gsp)
    atm = atm.shear(e1=params.psf_e1, e2=params.psf_e2)
    parts = [atm]
    if params.trail_length > 0.05:
        parts.append(galsim.Box(width=params.trail_length, height=0.01, gsparams=gsp)
                     .rotate(params.trail_angle * galsim.radians))
    if params.defocus_radius > 0:
        ro, ri = params.defocus_radius, params.defocus_radius * params.defocus_ratio
        a = ro ** 2 - ri ** 2
        parts.append(galsim.TopHat(radius=ro, flux=ro ** 2 / a, gsparams=gsp)
                     + galsim.TopHat(radius=ri, flux=-(ri ** 2) / a, gsparams=gsp))
    return galsim.Convolve(parts, gsparams=gsp) if len(parts) > 1 else atm, gsp


def _add(img: np.ndarray, stamp: np.ndarray, x0: int, y0: int) -> None:
    """Add ``stamp`` with its lower-left pixel at (x0, y0), clipped to ``img``."""
    ny, nx = img.shape
    sy, sx = stamp.shape
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + sx, nx), min(y0 + sy, ny)
    if xa >= xb or ya >= yb:
        return
    img[ya:yb, xa:xb] += stamp[ya - y0:yb - y0, xa - x0:xb - x0]


def _sample_mags(rng, n, m_lo, m_hi, slope):
    """Magnitudes with dN/dm ~ 10^(slope m) between m_lo and m_hi."""
    a = slope * np.log(10.0)
    u = rng.uniform(size=n)
    lo, hi = np.exp(a * m_lo), np.exp(a * m_hi)
    return np.log(lo + u * (hi - lo)) / a


def render_exposure(params: ExposureParams, cfg: SimConfig, rng: np.random.Generator):
    """Render all CCDs of one exposure.

    Returns
    -------
    ccds : list of numpy.ndarray
        (ny, nx) uint16 images in ADU, all zero for dead CCDs.
    truth : dict of numpy.ndarray
        Per-source truth: ``ccd``, ``x``, ``y`` (0-based pixels), ``mag``, ``is_star``.
    """
    import galsim

    ny, nx = cfg.ccd_shape
    scale = cfg.pixel_scale
    psf, gsp = _psf(params)
    area_deg2 = nx * ny * (scale / 3600.0) ** 2
    sky_adu = 10 ** (-0.4 * (params.sky_mag - ZEROPOINT)) * scale ** 2 * params.exptime
    flux_scale = params.exptime * params.transparency
    extent = params.fwhm * 4 + params.trail_length + 2.2 * params.defocus_radius
    half = int(math.ceil(extent / scale)) + 6
    size = 2 * half + 1
    # star library: the PSF at 4x4 sub-pixel offsets (1/4 pixel quantisation)
    lib = np.empty((4, 4, size, size), np.float32)
    for iy in range(4):
        for ix in range(4):
            lib[iy, ix] = psf.drawImage(nx=size, ny=size, scale=scale,
                                        offset=(ix / 4.0, iy / 4.0)).array
    peak_frac = float(lib.max())
    # faint-galaxy library: Sersic templates (unit flux) convolved with this exposure's PSF
    bright_gal_mag = 22.0
    n_lib = 48
    lib_r = np.sort(np.clip(0.55 * 10 ** (-0.12 * (rng.uniform(22.0, 25.3, n_lib) - 21.0))
                            * rng.lognormal(0, 0.35, n_lib), 0.15, 6.0))
    gal_lib = []
    for r in lib_r:
        gal = galsim.Sersic(n=float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.5, 4.0])),
                            half_light_radius=float(r), gsparams=gsp)
        gal = gal.shear(e=float(np.clip(rng.rayleigh(0.25), 0, 0.75)),
                        beta=float(rng.uniform(0, np.pi)) * galsim.radians)
        gh = max(half, int(math.ceil(3.0 * r / scale)) + half // 2)
        gal_lib.append(galsim.Convolve(gal, psf, gsparams=gsp).drawImage(
            nx=2 * gh + 1, ny=2 * gh + 1, scale=scale, offset=(rng.uniform(), rng.uniform())
        ).array.astype(np.float32))
    params.bgp_ccd_amp = [0.0] * cfg.n_ccd
    ccds, truth = [], {"ccd": [], "x": [], "y": [], "mag": [], "is_star": []}
    for ccd in range(cfg.n_ccd):
        crng = np.random.default_rng([int(rng.integers(2**63)), ccd])
        if ccd in params.dead_ccds:
            ccds.append(np.zeros((ny, nx), np.uint16))
            continue
        img = np.zeros((ny, nx), np.float32)
        bleeds = []
        # stars: dN/dm ~ 10^(0.12 m), density normalised at r < 24
        n_star = crng.poisson(params.star_density * area_deg2 * (1.0 + 0.25))
        ms = _sample_mags(crng, n_star, 14.0, 24.5, 0.12)
        xs = crng.uniform(-10, nx + 10, n_star)
        ys = crng.uniform(-10, ny + 10, n_star)
        for m, x, y in zip(ms, xs, ys):
            flux = 10 ** (-0.4 * (m - ZEROPOINT)) * flux_scale
            ix, iy = int(np.floor(x)), int(np.floor(y))
            fx, fy = int((x - ix) * 4), int((y - iy) * 4)
            _add(img, lib[fy, fx] * np.float32(flux), ix - half, iy - half)
            if flux * peak_frac > SATURATION:
                # vertical charge bleeding: excess charge fills the column up and down
                excess = flux * peak_frac * 0.6 / SATURATION
                bleeds.append((ix, iy, int(min(excess, ny / 2))))
        # galaxies: dN/dm ~ 10^(0.33 m), density normalised at r < 25
        n_gal = crng.poisson(cfg.galaxy_density * area_deg2 * 1.3)
        mg = _sample_mags(crng, n_gal, 17.0, 25.3, 0.33)
        gx = crng.uniform(-10, nx + 10, n_gal)
        gy = crng.uniform(-10, ny + 10, n_gal)
        ns = crng.choice([0.5, 1.0, 1.0, 1.5, 2.5, 4.0], size=n_gal)
        hlr = np.clip(0.55 * 10 ** (-0.12 * (mg - 21.0)) * crng.lognormal(0, 0.35, n_gal),
                      0.15, 6.0)
        eg = np.clip(crng.rayleigh(0.25, n_gal), 0.0, 0.75)
        bg = crng.uniform(0, np.pi, n_gal)
        for m, x, y, n, r, e, b in zip(mg, gx, gy, ns, hlr, eg, bg):
            flux = 10 ** (-0.4 * (m - ZEROPOINT)) * flux_scale
            ix, iy = int(np.floor(x)), int(np.floor(y))
            if m < bright_gal_mag:
                # resolved galaxy: its own Sersic profile, exact sub-pixel centre
                gal = galsim.Sersic(n=float(n), half_light_radius=float(r), flux=float(flux),
                                    gsparams=gsp).shear(e=float(e), beta=float(b) * galsim.radians)
                gh = max(half, int(math.ceil(3.0 * r / scale)) + half // 2)
                st = galsim.Convolve(gal, psf, gsparams=gsp).drawImage(
                    nx=2 * gh + 1, ny=2 * gh + 1, scale=scale, offset=(x - ix, y - iy)).array
                _add(img, st, ix - gh, iy - gh)
            else:
                # faint galaxy: the library template nearest in half-light radius, in one of
                # its 8 dihedral orientations, scaled to the flux
                j = int(np.clip(np.searchsorted(lib_r, r), 0, len(lib_r) - 1))
                j = int(np.clip(j + crng.integers(-1, 2), 0, len(lib_r) - 1))
                t = gal_lib[j]
                k = int(crng.integers(8))
                t = np.rot90(t, k % 4)
                if k >= 4:
                    t = t[:, ::-1]
                th = t.shape[0] // 2
                _add(img, t * np.float32(flux), ix - th, iy - th)
        sky = sky_adu * params.transparency ** 0.3   # clouds scatter moonlight: sky dims less
        pattern = background_pattern(params, ccd, (ny, nx), cfg.n_ccd)
        if params.bgp:
            params.bgp_ccd_amp[ccd] = round(pattern_amplitude(pattern), 4)
        pattern += _base_gradient(params, ccd, (ny, nx), cfg.n_ccd)
        img += np.float32(sky) * (1.0 + pattern)
        np.maximum(img, 0.0, out=img)
        # Poisson noise in electrons + Gaussian read noise, back to ADU
        noisy = crng.poisson(img * GAIN).astype(np.float32) / np.float32(GAIN)
        noisy += crng.normal(0.0, READ_NOISE_E / GAIN, size=img.shape).astype(np.float32)
        for ix, iy, length in bleeds:
            if 0 <= ix < nx:
                noisy[max(iy - length, 0):min(iy + length + 1, ny), ix] = SATURATION
        ccds.append(np.clip(np.rint(noisy), 0, SATURATION).astype(np.uint16))
        on = (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
        og = (gx >= 0) & (gx < nx) & (gy >= 0) & (gy < ny)
        truth["ccd"] += [ccd] * int(on.sum() + og.sum())
        truth["x"] += list(xs[on]) + list(gx[og])
        truth["y"] += list(ys[on]) + list(gy[og])
        truth["mag"] += list(ms[on]) + list(mg[og])
        truth["is_star"] += [True] * int(on.sum()) + [False] * int(og.sum())
    return ccds, {k: np.asarray(v) for k, v in truth.items()}


def write_mef(path: str | Path, ccds: list, params: ExposureParams | None, cfg: SimConfig,
              exptime: float | None = None) -> Path:
    """Write a MegaCam-like multi-extension FITS file.

    ``EXPTIME`` (s) goes in the primary header and in every extension header, as in
    MegaCam files; pass ``exptime=None`` with ``params=None`` to omit it.
    """
    from astropy.io import fits

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    exptime = params.exptime if params is not None else exptime
    prim = fits.PrimaryHDU()
    h = prim.header
    h["INSTRUME"] = "MegaPrime"
    h["FILTER"] = "r.MP9601"
    h["NEXTEND"] = len(ccds)
    h["PIXSCAL1"] = (cfg.pixel_scale, "arcsec/pixel")
    if params is not None:
        h["EXPNUM"] = params.expid
    if exptime is not None:
        h["EXPTIME"] = (float(exptime), "s")
    hdus = [prim]
    for k, data in enumerate(ccds):
        hdu = fits.ImageHDU(data=data, name=f"CCD{k:02d}")
        hdu.header["CCDNUM"] = k
        hdu.header["GAIN"] = (GAIN, "e-/ADU")
        hdu.header["RDNOISE"] = (READ_NOISE_E, "e-")
        hdu.header["SATURATE"] = (SATURATION, "ADU")
        if exptime is not None:
            hdu.header["EXPTIME"] = (float(exptime), "s")
        hdus.append(hdu)
    tmp = path.with_suffix(".tmp")
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    tmp.replace(path)
    return path


def exposure_plan(n_train_per_class: int, n_test_per_class: int, seed: int,
                  broken: bool = True) -> list[dict]:
    """The list of exposures to simulate: id, class label, split ('train' / 'test').

    Classes are balanced; the order is shuffled with the seed so that batches mix classes.
    With ``broken`` four test exposures with defects are appended (kind in
    'corrupt', 'no_exptime', 'nan_ccd', 'blank') to exercise the failure paths.
    """
    rng = np.random.default_rng([seed, 1])
    rows = []
    for split, n in (("train", n_train_per_class), ("test", n_test_per_class)):
        for label in CLASSES:
            rows += [{"label": label, "split": split, "defect": ""} for _ in range(n)]
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    if broken:
        for kind in ("corrupt", "no_exptime", "nan_ccd", "blank"):
            rows.append({"label": "Good", "split": "test", "defect": kind})
    for i, r in enumerate(rows):
        r["expid"] = 2_000_000 + i
        r["index"] = i
    return rows


def make_exposure(row: dict, path: str | Path, cfg: SimConfig, seed: int):
    """Simulate one exposure of the plan and write it to ``path``.

    Returns ``(exposure_record, truth_dict)``; the record holds the true class, the
    number of dead CCDs and all physical parameters.
    """
    rng = np.random.default_rng([seed, 7, row["index"]])
    params = draw_exposure_params(row["expid"], row["label"], rng, cfg,
                                  split=row.get("split", "test"))
    defect = row.get("defect", "")
    if defect == "blank":
        # readout failure: constant pedestal, no signal at all
        ny, nx = cfg.ccd_shape
        ccds = [np.full((ny, nx), 1000, np.uint16) for _ in range(cfg.n_ccd)]
        truth = {"ccd": np.zeros(0, int), "x": np.zeros(0), "y": np.zeros(0),
                 "mag": np.zeros(0), "is_star": np.zeros(0, bool)}
        params.dead_ccds = []
    else:
        ccds, truth = render_exposure(params, cfg, rng)
    if defect == "nan_ccd":
        live = [k for k in range(cfg.n_ccd) if k not in params.dead_ccds]
        bad = live[0] if live else 0
        ccds[bad] = np.full(ccds[bad].shape, np.nan, np.float32)
    write_mef(path, ccds, None if defect == "no_exptime" else params, cfg,
              exptime=None if defect == "no_exptime" else params.exptime)
    if defect == "corrupt":
        raw = Path(path).read_bytes()
        Path(path).write_bytes(raw[:4000] + b"\x00garbage" * 64)
    rec = asdict(params)
    rec.update({"split": row["split"], "defect": defect, "n_dead_ccd": len(params.dead_ccds),
                "n_ccd": int(cfg.n_ccd),
                "path": str(path), "bgp": ",".join(sorted(params.bgp)) or ""})
    rec["dead_ccds"] = ",".join(map(str, params.dead_ccds))
    rec["bgp_ccd_amp"] = ",".join(f"{a:.4f}" for a in params.bgp_ccd_amp)
    return rec, truth
