"""Sky geometry of catalog queries: separations, host cones and HEALPix membership.

Every selection of catalog rows (the synthetic provider, the live providers, NSA sky
cones, host association) uses these functions, so all of them apply the same rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def valid_position(ra, dec) -> np.ndarray:
    """Boolean mask of usable sky positions: finite RA in [0, 360] deg and finite Dec in
    [-90, 90] deg. Rows failing it are never dropped: they get ``cut_valid_position``
    (:mod:`catclean.cuts`), no host, and no HEALPix pixel of their own."""
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra <= 360) \
            & (np.abs(dec) <= 90)


def position_reason(ra, dec) -> np.ndarray:
    """Per row, why the position is invalid (``''`` when :func:`valid_position`)."""
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    out = np.full(ra.shape, "", dtype=object)
    with np.errstate(invalid="ignore"):
        out[np.isfinite(dec) & (np.abs(dec) > 90)] = "dec outside [-90, 90] deg"
        out[~np.isfinite(dec)] = "dec is NaN or infinite"
        out[np.isfinite(ra) & ((ra < 0) | (ra > 360))] = "ra outside [0, 360] deg"
        out[~np.isfinite(ra)] = "ra is NaN or infinite"
    return out.astype(str)


def _unit_vectors(ra, dec) -> np.ndarray:
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], -1)


def angular_separation_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Pairwise separations (deg) between arrays 1 (n) and 2 (m) -> (n, m)."""
    with np.errstate(invalid="ignore"):  # a NaN position gives a NaN separation
        v1, v2 = _unit_vectors(ra1, dec1), _unit_vectors(ra2, dec2)
        cosd = np.clip(v1 @ v2.T, -1.0, 1.0)
        return np.degrees(np.arccos(cosd))


def healpix(nside: int):
    """The nested-order ``astropy_healpix.HEALPix`` grid of ``nside``."""
    from astropy_healpix import HEALPix

    return HEALPix(nside=nside, order="nested")


def in_cones_and_pixel(ra, dec, cones: pd.DataFrame, hpx: int, nside: int,
                       keep_invalid: bool = False) -> np.ndarray:
    """Boolean mask: inside pixel ``hpx`` (nested) and within any valid host cone.

    A row without a valid position (:func:`valid_position`: NaN, infinite or out of
    range) has no pixel and no separation. With ``keep_invalid`` it is kept (True): the
    caller got it from a query of partition ``hpx``, so it stays in that partition, where
    ``cut_valid_position`` flags it; it is never dropped silently. Otherwise it is False.
    """
    from astropy import units as u

    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    if len(ra) == 0:
        return np.zeros(0, dtype=bool)
    valid = valid_position(ra, dec)
    out = np.zeros(len(ra), dtype=bool)
    ok = cones[cones.host_status == "ok"]
    if valid.any() and not ok.empty:
        pix = healpix(nside).lonlat_to_healpix(ra[valid] * u.deg, dec[valid] * u.deg)
        sep = angular_separation_deg(ra[valid], dec[valid], ok.RA, ok.DEC)
        out[valid] = (pix == hpx) & (sep <= ok.radius_deg.to_numpy()[None, :]).any(axis=1)
    if keep_invalid:
        out[~valid] = True
    return out


def pixel_cone(nside: int, pix: int) -> tuple[float, float, float]:
    """Centre (deg) and circumscribing radius (deg, padded 1%) of a nested pixel."""
    from astropy import units as u

    hp = healpix(nside)
    lon, lat = hp.healpix_to_lonlat([pix])
    blon, blat = hp.boundaries_lonlat([pix], step=4)
    ra, dec = float(lon.to_value(u.deg)[0]), float(lat.to_value(u.deg)[0])
    sep = angular_separation_deg([ra], [dec], blon.to_value(u.deg)[0], blat.to_value(u.deg)[0])
    return ra, dec, float(sep.max()) * 1.01 + 1e-7
