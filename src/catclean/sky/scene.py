"""Truth objects of the synthetic sky: hosts, satellites, background galaxies, stars.

Every object is one row of a truth table with intrinsic (extinction-free) AB magnitudes
in g, r, z, a shape and, for discs, bulge and star-forming-knot parameters. The same sky
position always holds the same objects whatever field is rendered around it: background
galaxies and stars are drawn per sky cell (0.1 x 0.1 deg) from a generator seeded by
``(seed, cell)``, hosts and their satellites from ``(seed, NSAID)``. Overlapping fields
therefore see one consistent sky.

Distributions (chosen to match real g, r, z imaging at these depths):

- background galaxies: Euclidean-like number counts dN/dm ~ 10^(0.33 m) for
  17 < r < 24.5; half-light radius log10(r_e/arcsec) = 0.30 - 0.12 (r - 18) +- 0.2 dex
  (faint galaxies are small); 60% disc-like (n ~ 1), 40% spheroids (n 2.5-4); blue
  (g-r ~ 0.45) and red (g-r ~ 1.0-1.3, redder when fainter/farther) populations;
- stars: flat counts dN/dm ~ 10^(0.12 m) for 14 < r < 24, colours along the stellar locus
  (0.2 < g-r < 1.5, r-z ~ 0.55 (g-r) + 0.05);
- satellites (Geha et al. 2017 / Mao et al. 2021 SAGA dwarfs): log M* 6.5-9.2,
  M_r = -21.0 - 2.0 (log M - 10.5), r_e = 10^(0.25 (log M - 8) + 0.1) kpc, n 0.6-1.2,
  blue (g-r 0.25-0.55), some with a few knots;
- hosts: bulge (de Vaucouleurs) + exponential disc + RandomKnots star-forming regions,
  from the ``sim_*`` columns of the host table (see :mod:`.hosts`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CELL_DEG = 0.1
KINDS = ("host", "satellite", "background", "star")

TRUTH_UNITS = {"ra": "deg", "dec": "deg", "mag_g": "mag", "mag_r": "mag", "mag_z": "mag",
               "r_e": "arcsec", "pa": "deg", "bulge_re": "arcsec", "knot_size": "arcsec"}


def _empty() -> pd.DataFrame:
    cols = {"truth_id": "int64", "kind": "str", "host_nsaid": "int64", "ra": "float64",
            "dec": "float64", "mag_g": "float64", "mag_r": "float64", "mag_z": "float64",
            "r_e": "float64", "sersic_n": "float64", "q": "float64", "pa": "float64",
            "bulge_frac": "float64", "bulge_re": "float64", "knot_frac": "float64",
            "n_knots": "int64", "knot_size": "float64", "seed": "int64"}
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in cols.items()})


def _cell_objects(seed: int, i: int, j: int, background_density: float,
                  star_density: float) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 2, i + 100000, j + 100000])
    dec0, dec1 = j * CELL_DEG - 90.0, (j + 1) * CELL_DEG - 90.0
    ra0, ra1 = i * CELL_DEG, (i + 1) * CELL_DEG
    area = CELL_DEG * CELL_DEG * np.cos(np.radians(0.5 * (dec0 + dec1)))
    n_gal = rng.poisson(background_density * area)
    n_star = rng.poisson(star_density * area)
    base_id = 10**12 + (i * 2000 + j) * 10**5

    def positions(n):
        return rng.uniform(ra0, ra1, n), np.degrees(np.arcsin(
            rng.uniform(np.sin(np.radians(dec0)), np.sin(np.radians(dec1)), n)))

    # galaxies: dN/dm ~ 10^(a m) sampled by inverse CDF
    a, m0, m1 = 0.33, 17.0, 24.5
    u = rng.uniform(0, 1, n_gal)
    mag_r = np.log10(10 ** (a * m0) + u * (10 ** (a * m1) - 10 ** (a * m0))) / a
    ra, dec = positions(n_gal)
    red = rng.uniform(0, 1, n_gal) < 0.35
    gr = np.where(red, rng.normal(1.0, 0.12, n_gal) + 0.06 * (mag_r - 20),
                  rng.normal(0.45, 0.15, n_gal))
    rz = np.where(red, rng.normal(0.75, 0.1, n_gal) + 0.05 * (mag_r - 20),
                  rng.normal(0.40, 0.15, n_gal))
    spheroid = red & (rng.uniform(0, 1, n_gal) < 0.8) | (~red & (rng.uniform(0, 1, n_gal) < 0.1))
    sersic_n = np.where(spheroid, rng.uniform(2.5, 4.0, n_gal), rng.uniform(0.7, 1.5, n_gal))
    r_e = 10 ** (0.30 - 0.12 * (mag_r - 18.0) + rng.normal(0, 0.2, n_gal))
    r_e = np.where(spheroid, 0.7 * r_e, r_e)
    q = np.where(spheroid, rng.uniform(0.5, 1.0, n_gal), rng.uniform(0.2, 1.0, n_gal))
    gals = pd.DataFrame({
        "truth_id": base_id + np.arange(n_gal), "kind": "background", "host_nsaid": -1,
        "ra": ra, "dec": dec, "mag_g": mag_r + gr, "mag_r": mag_r, "mag_z": mag_r - rz,
        "r_e": r_e, "sersic_n": np.round(sersic_n * 2) / 2, "q": q,
        "pa": rng.uniform(0, 180, n_gal), "bulge_frac": 0.0, "bulge_re": 0.0,
        "knot_frac": 0.0, "n_knots": 0, "knot_size": 0.0,
        "seed": rng.integers(0, 2**31 - 1, n_gal),
    })
    a, m0, m1 = 0.12, 14.0, 24.0
    u = rng.uniform(0, 1, n_star)
    smag = np.log10(10 ** (a * m0) + u * (10 ** (a * m1) - 10 ** (a * m0))) / a
    sgr = rng.uniform(0.2, 1.5, n_star)
    srz = 0.55 * sgr + 0.05 + rng.normal(0, 0.04, n_star)
    ra, dec = positions(n_star)
    stars = pd.DataFrame({
        "truth_id": base_id + 50000 + np.arange(n_star), "kind": "star", "host_nsaid": -1,
        "ra": ra, "dec": dec, "mag_g": smag + sgr, "mag_r": smag, "mag_z": smag - srz,
        "r_e": 0.0, "sersic_n": 0.0, "q": 1.0, "pa": 0.0, "bulge_frac": 0.0, "bulge_re": 0.0,
        "knot_frac": 0.0, "n_knots": 0, "knot_size": 0.0,
        "seed": rng.integers(0, 2**31 - 1, n_star),
    })
    return pd.concat([gals, stars], ignore_index=True)


def background_objects(ra_min: float, ra_max: float, dec_min: float, dec_max: float,
                       seed: int, background_density: float, star_density: float
                       ) -> pd.DataFrame:
    """Background galaxies and stars inside a sky box (deg), consistent between calls."""
    i0, i1 = int(np.floor(ra_min / CELL_DEG)), int(np.floor(ra_max / CELL_DEG))
    j0, j1 = int(np.floor((dec_min + 90) / CELL_DEG)), int(np.floor((dec_max + 90) / CELL_DEG))
    parts = [_cell_objects(seed, i, j, background_density, star_density)
             for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]
    out = pd.concat([_empty()] + parts, ignore_index=True)
    sel = out.ra.between(ra_min, ra_max) & out.dec.between(dec_min, dec_max)
    return out[sel].reset_index(drop=True)


#: log10 stellar mass range (Msun) of the satellites drawn around every host
SATELLITE_LOG_MASS = (6.5, 9.2)


def host_objects(hosts: pd.DataFrame, seed: int, radius_kpc: float, cosmo,
                 satellites_per_host=(2, 6), satellite_log_mass=SATELLITE_LOG_MASS
                 ) -> pd.DataFrame:
    """Hosts (bulge + disc + knots) and their satellites, for hosts with a valid redshift.

    Satellites: ``satellites_per_host`` (min, max) per host, log stellar mass uniform in
    ``satellite_log_mass``, within ``radius_kpc`` in projection."""
    rows = []
    for h in hosts.itertuples(index=False):
        if not np.isfinite(h.Z):
            continue
        rng = np.random.default_rng([seed, 3, int(h.NSAID)])
        gr, rz = h.sim_gr, h.sim_rz
        rows.append({
            "truth_id": int(h.NSAID) * 1000, "kind": "host", "host_nsaid": int(h.NSAID),
            "ra": h.RA, "dec": h.DEC, "mag_g": h.sim_mag_r + gr, "mag_r": h.sim_mag_r,
            "mag_z": h.sim_mag_r - rz, "r_e": h.SERSIC_TH50 * 1.05, "sersic_n": 1.0,
            "q": h.SERSIC_BA, "pa": h.SERSIC_PHI, "bulge_frac": h.sim_bulge_frac,
            "bulge_re": 0.2 * h.SERSIC_TH50, "knot_frac": h.sim_knot_frac,
            "n_knots": int(h.sim_n_knots),
            # star-forming complexes ~ 0.5-1 kpc across (Gaussian sigma 0.3 kpc)
            "knot_size": 0.3 / (cosmo.kpc_proper_per_arcmin(h.Z).value / 60.0),
            "seed": int(h.sim_seed),
        })
        kpc_per_arcsec = cosmo.kpc_proper_per_arcmin(h.Z).value / 60.0
        dist_mod = cosmo.distmod(h.Z).value
        n_sat = rng.integers(satellites_per_host[0], satellites_per_host[1] + 1)
        for k in range(n_sat):
            logm = rng.uniform(*satellite_log_mass)
            rproj = np.sqrt(rng.uniform((15 / radius_kpc) ** 2, 0.8**2)) * radius_kpc
            theta = rng.uniform(0, 2 * np.pi)
            dra = rproj / kpc_per_arcsec / 3600 * np.cos(theta) / np.cos(np.radians(h.DEC))
            ddec = rproj / kpc_per_arcsec / 3600 * np.sin(theta)
            mag_r = -21.0 - 2.0 * (logm - 10.5) + rng.normal(0, 0.2) + dist_mod
            sgr = rng.uniform(0.25, 0.55)
            with_knots = rng.uniform() < 0.3
            rows.append({
                "truth_id": int(h.NSAID) * 1000 + 1 + k, "kind": "satellite",
                "host_nsaid": int(h.NSAID), "ra": h.RA + dra, "dec": h.DEC + ddec,
                "mag_g": mag_r + sgr, "mag_r": mag_r, "mag_z": mag_r - (0.6 * sgr - 0.05),
                "r_e": 10 ** (0.25 * (logm - 8) + 0.1 + rng.normal(0, 0.1)) / kpc_per_arcsec,
                "sersic_n": float(np.round(rng.uniform(0.6, 1.2) * 20) / 20),
                "q": rng.uniform(0.4, 1.0), "pa": rng.uniform(0, 180), "bulge_frac": 0.0,
                "bulge_re": 0.0, "knot_frac": 0.15 if with_knots else 0.0,
                "n_knots": int(rng.integers(5, 15)) if with_knots else 0,
                "knot_size": 0.15 / kpc_per_arcsec, "seed": int(rng.integers(0, 2**31 - 1)),
            })
    return pd.concat([_empty(), pd.DataFrame(rows)], ignore_index=True)


def scene(hosts: pd.DataFrame, ra_min: float, ra_max: float, dec_min: float, dec_max: float,
          seed: int, radius_kpc: float, cosmo, background_density: float,
          star_density: float, satellites_per_host=(2, 6),
          satellite_log_mass=SATELLITE_LOG_MASS) -> pd.DataFrame:
    """All truth objects whose centre lies in the box (plus hosts/satellites near it)."""
    near = host_objects(hosts, seed, radius_kpc, cosmo, satellites_per_host,
                        satellite_log_mass)
    pad = 0.02  # deg: extended hosts just outside the box still throw light into it
    sel = near.ra.between(ra_min - pad, ra_max + pad) & near.dec.between(dec_min - pad,
                                                                         dec_max + pad)
    bg = background_objects(ra_min, ra_max, dec_min, dec_max, seed, background_density,
                            star_density)
    out = pd.concat([near[sel], bg], ignore_index=True)
    return out.sort_values("truth_id", kind="stable").reset_index(drop=True)
