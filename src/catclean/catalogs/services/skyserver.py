"""SDSS PhotoPrimary through SkyServer ``SqlSearch`` (``services.skyserver``)."""

from __future__ import annotations

from ..schema import RELEASES
from .base import LiveProvider, integer, num, parse_csv

#: SkyServer releases with the SqlSearch endpoint and the PhotoPrimary view
SDSS_RELEASES = RELEASES["sdss"]


class SDSSSkyServerProvider(LiveProvider):
    """SDSS PhotoPrimary (PhotoObj primary detections) via SkyServer ``SqlSearch`` (CSV).

    The cone is ``dbo.fGetNearbyObjEq(ra, dec, radius_arcmin)`` joined to
    ``PhotoPrimary`` (the PhotoObj view of primary detections, so one row per object).
    """

    service = "skyserver"
    releases = SDSS_RELEASES

    def sql(self, unit, limit: int) -> str:
        ra = num(unit.ra, "ra", -360, 720)
        dec = num(unit.dec, "dec", -90, 90)
        r_arcmin = num(unit.radius * 60.0, "radius_arcmin", 0, 180 * 60)
        cols = ", ".join(f"p.{c}" for c in self.columns)
        return (f"SELECT TOP {integer(limit, 'row_limit')} {cols} "
                f"FROM dbo.fGetNearbyObjEq({ra}, {dec}, {r_arcmin}) AS n "
                f"JOIN PhotoPrimary AS p ON p.objID = n.objID")

    def request(self, unit, limit):
        q = self.sql(unit, limit)
        return {"url": self.settings.url, "method": "GET", "query": q,
                "params": {"cmd": q, "format": "csv"}, "ext": "csv"}

    def read(self, body):
        return parse_csv(body, self.service)
