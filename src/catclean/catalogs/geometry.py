"""Sky geometry of catalog queries: separations, host cones and HEALPix membership.

Every selection of catalog rows (the synthetic provider, the live providers, NSA sky
cones, host association) uses these functions, so all of them apply the same rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _unit_vectors(ra, dec) -> np.ndarray:
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], -1)


def angular_separation_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Pairwise separations (deg) between arrays 1 (n) and 2 (m) -> (n, m)."""
    v1, v2 = _unit_vectors(ra1, dec1), _unit_vectors(ra2, dec2)
    cosd = np.clip(v1 @ v2.T, -1.0, 1.0)
    return np.degrees(np.arccos(cosd))


def healpix(nside: int):
    """The nested-order ``astropy_healpix.HEALPix`` grid of ``nside``."""
    from astropy_healpix import HEALPix

    return HEALPix(nside=nside, order="nested")


def in_cones_and_pixel(ra, dec, cones: pd.DataFrame, hpx: int, nside: int) -> np.ndarray:
    """Boolean mask: inside pixel ``hpx`` (nested) and within any valid host cone."""
    from astropy import units as u

    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    if len(ra) == 0:
        return np.zeros(0, dtype=bool)
    pix = healpix(nside).lonlat_to_healpix(ra * u.deg, dec * u.deg)
    ok = cones[cones.host_status == "ok"]
    if ok.empty:
        return np.zeros(len(ra), dtype=bool)
    sep = angular_separation_deg(ra, dec, ok.RA, ok.DEC)
    return (pix == hpx) & (sep <= ok.radius_deg.to_numpy()[None, :]).any(axis=1)


def pixel_cone(nside: int, pix: int) -> tuple[float, float, float]:
    """Centre (deg) and circumscribing radius (deg, padded 1%) of a nested pixel."""
    from astropy import units as u

    hp = healpix(nside)
    lon, lat = hp.healpix_to_lonlat([pix])
    blon, blat = hp.boundaries_lonlat([pix], step=4)
    ra, dec = float(lon.to_value(u.deg)[0]), float(lat.to_value(u.deg)[0])
    sep = angular_separation_deg([ra], [dec], blon.to_value(u.deg)[0], blat.to_value(u.deg)[0])
    return ra, dec, float(sep.max()) * 1.01 + 1e-7
