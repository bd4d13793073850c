"""Catalog providers: one interface, a synthetic and a live implementation per survey.

A provider answers one question: *the native catalog rows of this survey inside HEALPix
pixel ``hpx`` that lie within any host cone*. The workflow's ``query_catalog`` rule calls
:meth:`CatalogProvider.query` once per (survey, partition).

- :class:`SyntheticProvider` reads the detection catalogs of rendered host fields
  (rule ``render_field``). Host fields overlap; like the *unique area* of Legacy Surveys
  bricks, a detection is kept only from the field of the host nearest to it, so every
  sky position is catalogued once.
- Live providers (Data Lab TAP, SkyServer, MAST) live in :mod:`catclean.catalogs.live`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: native position columns per survey
POSITION_COLUMNS = {"legacy": ("ra", "dec"), "sdss": ("ra", "dec"),
                    "ps1": ("raStack", "decStack")}


def _unit_vectors(ra, dec) -> np.ndarray:
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], -1)


def angular_separation_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Pairwise separations (deg) between arrays 1 (n) and 2 (m) -> (n, m)."""
    v1, v2 = _unit_vectors(ra1, dec1), _unit_vectors(ra2, dec2)
    cosd = np.clip(v1 @ v2.T, -1.0, 1.0)
    return np.degrees(np.arccos(cosd))


def in_cones_and_pixel(ra, dec, cones: pd.DataFrame, hpx: int, nside: int) -> np.ndarray:
    """Boolean mask: inside pixel ``hpx`` (nested) and within any valid host cone."""
    from astropy import units as u
    from astropy_healpix import HEALPix

    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    if len(ra) == 0:
        return np.zeros(0, dtype=bool)
    hp = HEALPix(nside=nside, order="nested")
    pix = hp.lonlat_to_healpix(ra * u.deg, dec * u.deg)
    ok = cones[cones.host_status == "ok"]
    if ok.empty:
        return np.zeros(len(ra), dtype=bool)
    sep = angular_separation_deg(ra, dec, ok.RA, ok.DEC)
    return (pix == hpx) & (sep <= ok.radius_deg.to_numpy()[None, :]).any(axis=1)


class CatalogProvider(abc.ABC):
    """Interface of a survey catalog provider."""

    survey: str
    release: str

    @abc.abstractmethod
    def query(self, cones: pd.DataFrame, hpx: int, nside: int) -> pd.DataFrame:
        """Native catalog rows inside pixel ``hpx`` within any cone of ``cones``.

        Parameters
        ----------
        cones : pandas.DataFrame
            The hosts table with ``host_status``, ``RA``, ``DEC`` (deg) and ``radius_deg``.
        hpx : int
            HEALPix pixel (nested ordering).
        nside : int

        Returns
        -------
        pandas.DataFrame
            The survey's native columns (possibly zero rows, never None).
        """

    def describe(self) -> dict:
        """Provenance of the last query (query text, URL, release...)."""
        return {"provider": type(self).__name__, "survey": self.survey,
                "release": self.release}


class SyntheticProvider(CatalogProvider):
    """Queries the embedded synthetic sky (detection catalogs of rendered fields)."""

    def __init__(self, survey: str, release: str, field_catalogs: Sequence[str]):
        if survey not in POSITION_COLUMNS:
            raise ValueError(f"unknown survey {survey!r}")
        self.survey, self.release = survey, release
        self.field_catalogs = list(field_catalogs)
        self._query = ""

    def query(self, cones: pd.DataFrame, hpx: int, nside: int) -> pd.DataFrame:
        from ..io import read_parquet

        rac, decc = POSITION_COLUMNS[self.survey]
        ok = cones[cones.host_status == "ok"].reset_index(drop=True)
        parts = []
        for path in self.field_catalogs:
            cat = read_parquet(path)
            if cat.empty:
                parts.append(cat)
                continue
            # unique area: keep detections whose nearest host centre is this field's host
            sep = angular_separation_deg(cat[rac], cat[decc], ok.RA, ok.DEC)
            nearest = ok.NSAID.to_numpy()[np.argmin(sep, axis=1)]
            own = nearest == cat["field_nsaid"].to_numpy()
            keep = own & in_cones_and_pixel(cat[rac], cat[decc], cones, hpx, nside)
            parts.append(cat[keep])
        self._query = (f"synthetic sky: fields {[int(c) for c in ok.NSAID]} "
                       f"survey={self.survey} release={self.release} hpx={hpx} nside={nside}")
        if not parts:
            return pd.DataFrame()
        out = pd.concat(parts, ignore_index=True)
        return out.sort_values([rac, decc], kind="stable").reset_index(drop=True)

    def describe(self) -> dict:
        return {**super().describe(), "query": self._query}


def get_provider(survey: str, spec: dict, services: dict | None = None,
                 field_catalogs: Sequence[str] = ()) -> CatalogProvider:
    """The provider configured for ``survey`` (``spec`` is ``config['surveys'][survey]``)."""
    kind = spec["provider"]
    if kind == "synthetic":
        return SyntheticProvider(survey, spec["release"], field_catalogs)
    if kind == "live":
        try:
            from . import live
        except ImportError as exc:  # pragma: no cover - depends on installation
            raise RuntimeError(f"live provider for {survey} is not available: {exc}") from exc
        return live.get_live_provider(survey, spec, services or {})
    raise ValueError(f"surveys.{survey}.provider: unknown provider {kind!r}")
