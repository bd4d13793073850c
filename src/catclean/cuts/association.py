"""Host association: the nearest host in projected physical distance.

For each source and each valid host, the projected separation is
``d = theta * D_A(z_host)`` (proper kpc; ``astropy.cosmology`` with the configured
FlatLambdaCDM). The source is associated with the host of smallest ``d``; it passes
``cut_host_radius`` when ``d <= radius_kpc`` (paper 001: 100 kpc; SAGA: 300 kpc).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..catalogs.geometry import angular_separation_deg


def associate_hosts(df: pd.DataFrame, hosts: pd.DataFrame, radius_kpc: float,
                    cosmo) -> pd.DataFrame:
    """Add ``host_nsaid``, ``host_z``, ``host_dist_kpc`` and ``cut_host_radius``."""
    out = df.copy()
    ok = hosts[np.isfinite(pd.to_numeric(hosts["Z"], errors="coerce")) & (hosts["Z"] > 0)]
    ok = ok.reset_index(drop=True)
    n = len(out)
    if n == 0 or ok.empty:
        out["host_nsaid"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
        out["host_z"] = np.full(n, np.nan)
        out["host_dist_kpc"] = np.full(n, np.nan)
        out["cut_host_radius"] = np.zeros(n, dtype=bool)
        return out
    kpc_per_deg = cosmo.kpc_proper_per_arcmin(ok["Z"].to_numpy(float)).value * 60.0
    sep = angular_separation_deg(out["ra"], out["dec"], ok["RA"], ok["DEC"])
    dist = sep * kpc_per_deg[None, :]
    best = np.argmin(dist, axis=1)
    out["host_nsaid"] = pd.array(ok["NSAID"].to_numpy()[best], dtype="Int64")
    out["host_z"] = ok["Z"].to_numpy(float)[best]
    out["host_dist_kpc"] = dist[np.arange(n), best]
    out["cut_host_radius"] = out["host_dist_kpc"].to_numpy() <= radius_kpc
    return out
