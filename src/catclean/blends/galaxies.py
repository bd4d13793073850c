"""Isolated r-band galaxies rendered with GalSim, in nanomaggies (paper 002 Sec. 2.1).

The paper builds its parent sample from CANDELS stamps with the neighbours removed, in
four morphological classes (Table 1). We render the equivalent directly: one galaxy per
stamp (no neighbours by construction), Legacy-Surveys-like sampling (0.262"/pix), a
Moffat PSF and Gaussian pixel noise, with the Table 1 morphological mix:

- ``bulge``      de Vaucouleurs (Sersic n=4) profile;
- ``disk``       exponential profile;
- ``bulge_disk`` de Vaucouleurs bulge (B/T 0.2-0.6, r_e 0.4 of the disk) + exponential disk;
- ``irregular``  exponential disk + ``galsim.RandomKnots`` star-forming clumps (40-70 %
  of the light), slightly offset.

Pixel values are nanomaggies (zero point 22.5), the same units as Legacy cutouts, so a
model trained on these stamps reads catalog cutouts without any rescaling.

Truth (Sec. 3): the Kron (FLUX_AUTO-like) flux measured with sep on the noisy isolated
stamp, and the sep segmentation map of the galaxy (see
:func:`catclean.blends.photometry.isolated_measurement`). The rendered model flux is kept
too (``flux_model``).

Stamps are rendered on a canvas twice the blend size (``2 * stamp``), so that the shifted
companion of :mod:`catclean.blends.blending` is cut from real pixels of its own stamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np
import pandas as pd

from . import MORPHOLOGIES, ZERO_POINT
from .photometry import isolated_measurement


@dataclass
class GalaxySimConfig:
    """Parameters of the isolated-galaxy simulator (see config/README.md, ``blends``).

    Attributes
    ----------
    stamp : int
        Blend stamp size in pixels; isolated galaxies are rendered on ``2 * stamp``.
    pixel_scale : float
        arcsec / pixel (Legacy Surveys: 0.262).
    psf_fwhm : (float, float)
        Range of the Moffat PSF FWHM in arcsec (uniform per galaxy).
    psf_beta : float
        Moffat beta (3.5 is a good description of the DECam core).
    noise_sigma : float
        Per-pixel Gaussian noise of a *blend* stamp in nanomaggies; each isolated stamp
        carries ``noise_sigma / sqrt(2)`` so the sum of two stamps has ``noise_sigma``.
    mag_range : (float, float)
        r-band AB magnitudes drawn from dN/dm ~ 10**(slope * m) in this range.
    count_slope : float
        Slope of the differential number counts (dex per mag).
    r_eff_19 : float
        Median disk half-light radius (arcsec) at r = 19; size-magnitude slope
        ``size_slope`` dex per mag, lognormal scatter ``size_scatter`` dex.
    morph_mix : dict
        Relative weights of the four morphologies (default: Table 1).
    """

    stamp: int
    pixel_scale: float
    psf_fwhm: tuple[float, float]
    psf_beta: float
    noise_sigma: float
    mag_range: tuple[float, float]
    count_slope: float
    r_eff_19: float
    size_slope: float
    size_scatter: float
    r_eff_range: tuple[float, float]
    morph_mix: dict

    @classmethod
    def from_config(cls, cfg: dict) -> GalaxySimConfig:
        """From a complete ``blends.sim`` mapping plus ``stamp`` (as
        :func:`catclean.blends.settings.stage_settings` builds it); every key required."""
        missing = sorted(set(cls.__dataclass_fields__) - set(cfg))
        if missing:
            raise KeyError(f"blends.sim settings lack {missing}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v)
                      for k, v in cfg.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_preset(cls, name: str | None = None, **overrides) -> GalaxySimConfig:
        """The simulator of a schema preset of ``blends`` with ``overrides``."""
        from ..config import default_config
        from .settings import stage_settings

        cfg = default_config({"blends": {"preset": name}} if name else None)
        return cls.from_config({**stage_settings(cfg)["sim"], **overrides})


def _draw_mags(rng: np.random.Generator, n: int, lo: float, hi: float, slope: float):
    """Inverse-CDF draw from dN/dm ~ 10**(slope m) on [lo, hi]."""
    u = rng.uniform(size=n)
    a = slope * np.log(10.0)
    return np.log(np.exp(a * lo) + u * (np.exp(a * hi) - np.exp(a * lo))) / a


def draw_parameters(n: int, cfg: GalaxySimConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Draw morphology, magnitude, size, shape and PSF of ``n`` galaxies.

    Returns a table with ``morph``, ``mag_model`` (AB), ``flux_model`` (nanomaggies),
    ``r_eff`` (half-light radius, arcsec), ``q`` (axis ratio), ``beta`` (position angle,
    rad), ``bt`` (bulge fraction), ``knot_frac``, ``n_knots``, ``psf_fwhm`` (arcsec),
    ``galsim_seed``.
    """
    names = list(MORPHOLOGIES)
    w = np.array([float(cfg.morph_mix.get(m, 0.0)) for m in names])
    if w.sum() <= 0:
        raise ValueError("blends.morph_mix: at least one morphology needs a positive weight")
    morph = rng.choice(len(names), size=n, p=w / w.sum())
    mag = _draw_mags(rng, n, *cfg.mag_range, cfg.count_slope)
    logr = (np.log10(cfg.r_eff_19) + cfg.size_slope * (mag - 19.0)
            + rng.normal(0.0, cfg.size_scatter, n))
    r_eff = 10 ** logr
    r_eff = np.where(morph == 0, 0.6 * r_eff, r_eff)  # spheroids are more compact
    r_eff = np.clip(r_eff, *cfg.r_eff_range)
    q_lo = np.array([0.6, 0.25, 0.4, 0.3])[morph]
    q = rng.uniform(q_lo, 1.0)
    beta = rng.uniform(0, np.pi, n)
    bt = np.where(morph == 2, rng.uniform(0.2, 0.6, n), np.where(morph == 0, 1.0, 0.0))
    knot_frac = np.where(morph == 3, rng.uniform(0.4, 0.7, n), 0.0)
    n_knots = np.where(morph == 3, rng.integers(5, 30, n), 0)
    psf = rng.uniform(*cfg.psf_fwhm, n)
    seeds = rng.integers(1, 2**31 - 1, n)
    return pd.DataFrame({
        "morph": pd.Series(np.array(names)[morph], dtype="string"),
        "mag_model": mag,
        "flux_model": 10 ** (-0.4 * (mag - ZERO_POINT)),
        "r_eff": r_eff, "q": q, "beta": beta, "bt": bt, "knot_frac": knot_frac,
        "n_knots": n_knots.astype(np.int64), "psf_fwhm": psf, "galsim_seed": seeds,
    })


_GSP = galsim.GSParams(maximum_fft_size=16384)


def galaxy_profile(row) -> galsim.GSObject:
    """GalSim profile (before PSF) of one parameter row; total flux in nanomaggies."""
    flux, re = float(row.flux_model), float(row.r_eff)
    shear = galsim.Shear(q=float(row.q), beta=float(row.beta) * galsim.radians)
    morph = str(row.morph)
    if morph == "bulge":
        gal = galsim.DeVaucouleurs(half_light_radius=re, flux=flux, gsparams=_GSP)
    elif morph == "disk":
        gal = galsim.Exponential(half_light_radius=re, flux=flux, gsparams=_GSP)
    elif morph == "bulge_disk":
        bt = float(row.bt)
        gal = (galsim.DeVaucouleurs(half_light_radius=0.4 * re, flux=bt * flux, gsparams=_GSP)
               + galsim.Exponential(half_light_radius=re, flux=(1 - bt) * flux, gsparams=_GSP))
    elif morph == "irregular":
        kf = float(row.knot_frac)
        rng = galsim.BaseDeviate(int(row.galsim_seed))
        knots = galsim.RandomKnots(int(row.n_knots), half_light_radius=1.2 * re,
                                   flux=kf * flux, rng=rng, gsparams=_GSP)
        ud = galsim.UniformDeviate(rng)
        knots = knots.shift(0.3 * re * (ud() - 0.5), 0.3 * re * (ud() - 0.5))
        gal = galsim.Exponential(half_light_radius=re, flux=(1 - kf) * flux,
                                 gsparams=_GSP) + knots
    else:
        raise ValueError(f"unknown morphology {morph!r}; expected one of {MORPHOLOGIES}")
    return gal.shear(shear)


def render(row, cfg: GalaxySimConfig, size: int) -> np.ndarray:
    """Noise-free PSF-convolved image (size x size, nanomaggies / pixel), galaxy centred."""
    psf = galsim.Moffat(beta=cfg.psf_beta, fwhm=float(row.psf_fwhm), gsparams=_GSP)
    img = galsim.Convolve(galaxy_profile(row), psf, gsparams=_GSP).drawImage(
        nx=size, ny=size, scale=cfg.pixel_scale)
    return img.array.astype(np.float32)


@dataclass
class GalaxySet:
    """Rendered isolated galaxies.

    Attributes
    ----------
    table : DataFrame
        Parameters plus ``flux_iso`` (Kron flux on the isolated stamp, nanomaggies),
        ``mag_iso``, ``R_pix`` (semi-major effective radius in pixels, Sec. 2.2) and ``ok``.
    images : ndarray (n, C, C) float32
        Noisy isolated stamps (nanomaggies / pixel), C = 2 * stamp.
    masks : ndarray (n, C, C) bool
        sep segmentation map of each galaxy.
    """

    table: pd.DataFrame
    images: np.ndarray
    masks: np.ndarray


def make_galaxies(n: int, cfg: GalaxySimConfig, rng: np.random.Generator,
                  progress=None) -> GalaxySet:
    """Render ``n`` isolated galaxies and measure their truth (Sec. 2.1, 3).

    Galaxies whose truth measurement fails (no detection at the centre) get ``ok=False``;
    the blending step uses only ``ok`` galaxies (the paper's visual inspection drops
    such cases too).
    """
    size = 2 * int(cfg.stamp)
    tab = draw_parameters(n, cfg, rng)
    sig_iso = cfg.noise_sigma / np.sqrt(2.0)
    images = np.zeros((n, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=bool)
    flux_iso = np.full(n, np.nan)
    it = range(n) if progress is None else progress(range(n))
    for i in it:
        row = tab.iloc[i]
        img = render(row, cfg, size) + rng.normal(0.0, sig_iso, (size, size)).astype(np.float32)
        images[i] = img
        flux_iso[i], masks[i] = isolated_measurement(img, sig_iso)
    tab["flux_iso"] = flux_iso
    with np.errstate(invalid="ignore", divide="ignore"):
        tab["mag_iso"] = np.where(flux_iso > 0, ZERO_POINT - 2.5 * np.log10(flux_iso), np.nan)
    tab["R_pix"] = tab["r_eff"] / np.sqrt(tab["q"]) / cfg.pixel_scale
    tab["ok"] = np.isfinite(tab["mag_iso"]) & masks.any(axis=(1, 2))
    tab.insert(0, "gal_id", np.arange(n, dtype=np.int64))
    return GalaxySet(table=tab, images=images, masks=masks)
