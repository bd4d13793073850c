"""Host cones and the HEALPix partition plan.

Each valid host defines a cone of the association radius (kpc) at its angular-diameter
distance. The workflow runs one query job per survey and HEALPix (nested) pixel touched by
any cone; a source belongs to the partition of its own position, so partitions are
disjoint and each source is queried exactly once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def host_cones(hosts: pd.DataFrame, radius_kpc: float, cosmo) -> pd.DataFrame:
    """Per host: validity flag, reason, and the cone radius in degrees.

    Hosts with a missing, non-finite or non-positive redshift, or bad coordinates, are
    kept with ``host_status = 'flagged'`` and a reason; they define no cone.
    """
    z = pd.to_numeric(hosts["Z"], errors="coerce").to_numpy(float)
    ra = pd.to_numeric(hosts["RA"], errors="coerce").to_numpy(float)
    dec = pd.to_numeric(hosts["DEC"], errors="coerce").to_numpy(float)
    reason = np.full(len(hosts), "", dtype=object)
    reason[~np.isfinite(z)] = "redshift Z is NaN or missing"
    reason[np.isfinite(z) & (z <= 0)] = "redshift Z <= 0"
    badpos = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    reason[badpos] = "RA/DEC missing or out of range"
    ok = reason == ""
    radius = np.full(len(hosts), np.nan)
    if ok.any():
        kpc_per_deg = cosmo.kpc_proper_per_arcmin(z[ok]).value * 60.0
        radius[ok] = radius_kpc / kpc_per_deg
    out = hosts.copy()
    out["host_status"] = np.where(ok, "ok", "flagged")
    out["host_reason"] = reason.astype(str)
    out["radius_deg"] = radius
    return out


def partition_plan(cones: pd.DataFrame, nside: int) -> dict:
    """The partitions to query and, for each, the hosts whose cone touches it.

    Returns
    -------
    dict
        ``{"nside": int, "partitions": [int, ...], "fields": {"<hpx>": [NSAID, ...]}}``
    """
    from astropy import units as u
    from astropy_healpix import HEALPix

    hp = HEALPix(nside=nside, order="nested")
    fields: dict[str, list[int]] = {}
    for h in cones[cones.host_status == "ok"].itertuples(index=False):
        # pad by one pixel resolution so sources exactly on the cone edge are not missed
        pix = hp.cone_search_lonlat(h.RA * u.deg, h.DEC * u.deg, h.radius_deg * 1.02 * u.deg)
        for p in np.unique(pix):
            fields.setdefault(str(int(p)), []).append(int(h.NSAID))
    parts = sorted(int(p) for p in fields)
    return {"nside": nside, "partitions": parts,
            "fields": {str(p): sorted(fields[str(p)]) for p in parts}}
