"""NSA-like host galaxies for the synthetic sky.

Columns follow the NASA-Sloan Atlas v1_0_1 (Blanton et al. 2011) names and units:

========== ============ ==========================================================
column     unit         meaning
========== ============ ==========================================================
NSAID      --           unique id
IAUNAME    --           IAU-style name
RA, DEC    deg          ICRS position
Z          --           heliocentric redshift
ZDIST      --           distance estimate as a redshift (here: equal to Z)
SERSIC_TH50 arcsec      Sersic half-light radius (r band)
SERSIC_N   --           Sersic index
SERSIC_BA  --           axis ratio b/a
SERSIC_PHI deg          position angle, east of north
SERSIC_FLUX nanomaggies list of 7 fluxes, bands F N u g r i z (UV and u, i: NaN here)
ELPETRO_MASS Msun/h^2   stellar mass (NSA uses h = 1)
========== ============ ==========================================================

The simulator's own physical parameters are kept in ``sim_*`` columns (bulge fraction,
knot count, colours...) so every field can be re-rendered from the table alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cosmology import make_cosmology
from .surveys import NANOMAGGY_ZP

#: columns of the NSA v1_0_1 catalogue that catclean uses
NSA_COLUMNS = ["NSAID", "IAUNAME", "RA", "DEC", "Z", "ZDIST", "SERSIC_TH50", "SERSIC_N",
               "SERSIC_BA", "SERSIC_PHI", "SERSIC_FLUX", "ELPETRO_MASS"]

NSA_UNITS = {"RA": "deg", "DEC": "deg", "SERSIC_TH50": "arcsec", "SERSIC_PHI": "deg",
             "SERSIC_FLUX": "nanomaggy", "ELPETRO_MASS": "solMass / h^2"}


def iau_name(ra: float, dec: float) -> str:
    """IAU-style 'JHHMMSS.ss+DDMMSS.s' designation."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    c = SkyCoord(ra * u.deg, dec * u.deg)
    return "J" + c.to_string("hmsdms", sep="", precision=2).replace(" ", "")


def synthetic_hosts(n_hosts: int, ra_range, dec_range, z_range, log_mass_range, seed: int,
                    cosmology=None, nan_redshift_hosts: int = 0,
                    h: float = 0.7, z_weighting: str = "volume") -> pd.DataFrame:
    """Draw an NSA-like host table.

    Hosts are Milky-Way-like discs at redshifts uniform in volume (dN/dz ~ z^2; or
    uniform in z, ``z_weighting``) within ``z_range``; stellar mass log-uniform in ``log_mass_range``; r-band
    luminosity from a constant mass-to-light ratio (M_r = -21.0 at log M = 10.5, 2.5 mag
    per dex); half-light radius R50 = 4.5 kpc at log M = 10.5, slope 0.22, 0.15 dex
    scatter: shaped on the late-type size-mass relation of Shen et al. (2003), but 1.2-1.3x
    their fit (3.4 kpc at log M = 10.5; docs/realism.md, session 15). 30% are early
    types (bulge-to-total 0.5-0.8, no star formation); the others are discs with
    bulge-to-total 0.05-0.4 and 12-25% of the light in blue star-forming regions (small
    knots and giant HII complexes).

    Parameters
    ----------
    n_hosts : int
    ra_range, dec_range : (float, float)
        Sky box in deg; positions are uniform on the sphere inside it.
    z_range : (float, float)
    log_mass_range : (float, float)
        log10 stellar mass (Msun, with h = ``h``).
    seed : int
    cosmology : astropy.cosmology.FLRW, optional
    nan_redshift_hosts : int
        The last hosts get ``Z = NaN`` (they are flagged downstream, never queried).
    h : float
        Hubble parameter of the NSA's h-scaled masses.
    z_weighting : {"volume", "uniform"}
        Redshifts uniform in comoving volume (a volume-limited sample; the default) or
        uniform in z (more nearby, extended hosts, as in an eye-picked training set).

    Returns
    -------
    pandas.DataFrame
        NSA columns plus ``sim_*`` parameters.
    """
    rng = np.random.default_rng([seed, 1])
    cosmo = cosmology or make_cosmology()
    ra = rng.uniform(*ra_range, n_hosts)
    sin_dec = rng.uniform(*np.sin(np.radians(dec_range)), n_hosts)
    dec = np.degrees(np.arcsin(sin_dec))
    # uniform in comoving volume at these low redshifts (dN/dz ~ z^2), as a
    # volume-limited NSA-like sample: nearby, very extended hosts are rare
    z0, z1 = z_range
    u = rng.uniform(0, 1, n_hosts)
    if z_weighting == "volume":
        z = (z0**3 + u * (z1**3 - z0**3)) ** (1 / 3)
    elif z_weighting == "uniform":
        z = z0 + u * (z1 - z0)
    else:
        raise ValueError(f"z_weighting must be 'volume' or 'uniform'; got {z_weighting!r}")
    logm = rng.uniform(*log_mass_range, n_hosts)
    r50_kpc = 10 ** (0.65 + 0.22 * (logm - 10.5) + rng.normal(0, 0.15, n_hosts))
    kpc_per_arcsec = cosmo.kpc_proper_per_arcmin(z).value / 60.0
    th50 = r50_kpc / kpc_per_arcsec
    abs_r = -21.0 - 2.5 * (logm - 10.5) + rng.normal(0, 0.15, n_hosts)
    dist_mod = cosmo.distmod(z).value
    mag_r = abs_r + dist_mod
    # ~30% early types (bulge-dominated, no star formation) as among NSA galaxies of
    # this mass; the rest star-forming discs
    early = rng.uniform(0, 1, n_hosts) < 0.3
    bulge_frac = np.where(early, rng.uniform(0.5, 0.8, n_hosts), rng.uniform(0.05, 0.4, n_hosts))
    knot_frac = np.where(early, 0.0, rng.uniform(0.12, 0.25, n_hosts))
    # colours of the whole galaxy, mixed from components (bulge red, disc, blue knots)
    gr = 0.80 * bulge_frac + 0.45 * (1 - bulge_frac - knot_frac) + 0.10 * knot_frac
    rz = 0.45 * bulge_frac + 0.30 * (1 - bulge_frac - knot_frac) + 0.00 * knot_frac
    inc = np.degrees(np.arccos(rng.uniform(0.15, 1.0, n_hosts)))  # isotropic inclinations
    q0 = 0.15  # intrinsic disc thickness
    ba = np.sqrt(np.cos(np.radians(inc)) ** 2 * (1 - q0**2) + q0**2)
    phi = rng.uniform(0, 180, n_hosts)
    flux_r = 10 ** (-0.4 * (mag_r - NANOMAGGY_ZP))
    flux_g = flux_r * 10 ** (-0.4 * gr)
    flux_z = flux_r * 10 ** (0.4 * rz)
    nsaid = 100000 + np.arange(n_hosts) * 7 + rng.integers(0, 7, n_hosts)
    sersic_flux = [[np.nan, np.nan, np.nan, fg, fr, np.nan, fz]
                   for fg, fr, fz in zip(flux_g, flux_r, flux_z)]
    df = pd.DataFrame({
        "NSAID": nsaid.astype("int64"),
        "IAUNAME": [iau_name(a, d) for a, d in zip(ra, dec)],
        "RA": ra, "DEC": dec, "Z": z, "ZDIST": z.copy(),
        "SERSIC_TH50": th50,
        "SERSIC_N": 1.0 + 3.0 * bulge_frac,
        "SERSIC_BA": ba, "SERSIC_PHI": phi,
        "SERSIC_FLUX": sersic_flux,
        "ELPETRO_MASS": 10 ** logm * h**2,
        "sim_log_mass": logm, "sim_r50_kpc": r50_kpc, "sim_mag_r": mag_r,
        "sim_gr": gr, "sim_rz": rz, "sim_bulge_frac": bulge_frac, "sim_knot_frac": knot_frac,
        "sim_n_knots": rng.integers(30, 100, n_hosts).astype("int64"),
        "sim_seed": rng.integers(0, 2**31 - 1, n_hosts).astype("int64"),
    })
    if nan_redshift_hosts:
        k = min(nan_redshift_hosts, n_hosts)
        df.loc[df.index[-k:], ["Z", "ZDIST"]] = np.nan
    return df
