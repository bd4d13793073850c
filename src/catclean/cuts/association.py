"""Host association: the nearest host in projected physical distance.

For each source and each valid host, the projected separation is
``d = theta * D_A(z_host)`` (proper kpc; ``astropy.cosmology`` with the configured
FlatLambdaCDM). The source is associated with the host of smallest ``d``; it passes
``cut_host_radius`` when ``d <= radius_kpc`` (paper 001: 100 kpc; SAGA: 300 kpc).
A source without a valid position (:func:`~catclean.catalogs.geometry.valid_position`)
is associated with no host: ``host_nsaid`` null, distance NaN, ``cut_host_radius``
False.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..catalogs.geometry import angular_separation_deg, valid_position


def associate_hosts(df: pd.DataFrame, hosts: pd.DataFrame, radius_kpc: float,
                    cosmo) -> pd.DataFrame:
    """Add ``host_nsaid``, ``host_z``, ``host_dist_kpc`` and ``cut_host_radius``.

    Rows without a valid position, and hosts without a valid position or redshift, take
    part in no association (such a row gets a null ``host_nsaid``)."""
    out = df.copy()
    z = pd.to_numeric(hosts["Z"], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        good_host = np.isfinite(z) & (z > 0) & valid_position(
            pd.to_numeric(hosts["RA"], errors="coerce"),
            pd.to_numeric(hosts["DEC"], errors="coerce"))
    ok = hosts[good_host].reset_index(drop=True)
    n = len(out)
    valid = valid_position(out["ra"], out["dec"]) if n else np.zeros(0, bool)
    if n == 0 or ok.empty or not valid.any():
        out["host_nsaid"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
        out["host_z"] = np.full(n, np.nan)
        out["host_dist_kpc"] = np.full(n, np.nan)
        out["cut_host_radius"] = np.zeros(n, dtype=bool)
        return out
    kpc_per_deg = cosmo.kpc_proper_per_arcmin(ok["Z"].to_numpy(float)).value * 60.0
    rows = np.flatnonzero(valid)
    sep = angular_separation_deg(out["ra"].to_numpy(float)[rows],
                                 out["dec"].to_numpy(float)[rows], ok["RA"], ok["DEC"])
    dist = sep * kpc_per_deg[None, :]
    best = np.argmin(dist, axis=1)
    nsaid = pd.array([pd.NA] * n, dtype="Int64")
    nsaid[rows] = pd.array(ok["NSAID"].to_numpy()[best], dtype="Int64")
    host_z, host_dist = np.full(n, np.nan), np.full(n, np.nan)
    host_z[rows] = ok["Z"].to_numpy(float)[best]
    host_dist[rows] = dist[np.arange(len(rows)), best]
    out["host_nsaid"] = nsaid
    out["host_z"] = host_z
    out["host_dist_kpc"] = host_dist
    with np.errstate(invalid="ignore"):
        out["cut_host_radius"] = host_dist <= radius_kpc
    return out
