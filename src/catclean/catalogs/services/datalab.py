"""Legacy Surveys Tractor catalogues through NOIRLab Data Lab TAP (``services.datalab``)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from ...net import ParseError, SchemaError
from ..schema import RELEASES
from .base import LiveProvider, integer, num, parse_csv

#: release -> Data Lab table
LEGACY_TABLES = {"dr9": "ls_dr9.tractor", "dr10": "ls_dr10.tractor"}


def parse_votable(body: bytes, service: str = "datalab") -> pd.DataFrame:
    """TAP VOTable answer -> DataFrame (a TAP ``QUERY_STATUS=ERROR`` is a SchemaError)."""
    import warnings

    from astropy.io.votable import parse as vo_parse
    from pyvo.dal import DALQueryError
    from pyvo.dal.tap import TAPResults

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vot = vo_parse(io.BytesIO(body), verify="ignore")
    except Exception as exc:  # noqa: BLE001 - any XML/VOTable failure is a bad body
        raise ParseError(f"{service}: malformed VOTable ({type(exc).__name__}: {exc})") from None
    try:
        res = TAPResults(vot)
    except DALQueryError as exc:
        raise SchemaError(f"{service}: TAP query failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001
        raise ParseError(f"{service}: unreadable TAP result ({exc})") from None
    tab = res.to_table()
    cols = {}
    for name in tab.colnames:
        col = tab[name]
        mask = np.ma.getmaskarray(col) if hasattr(col, "mask") else np.zeros(len(col), bool)
        data = np.asarray(col.data if hasattr(col, "mask") else col)
        if mask.any() and data.dtype.kind in "iu":  # nullable integers: no float round trip
            cols[name] = pd.array([None if m else int(v) for v, m in zip(data, mask)],
                                  dtype="Int64")
        elif mask.any() and data.dtype.kind == "f":
            cols[name] = np.where(mask, np.nan, data)
        elif mask.any():
            cols[name] = pd.Series(data, dtype=object).where(~mask, None)
        else:
            cols[name] = data
    return pd.DataFrame(cols)


class LegacyTAPProvider(LiveProvider):
    """Legacy Surveys Tractor catalogue (``ls_<release>.tractor``) via Data Lab TAP (sync).

    The request is the TAP sync protocol (``POST <url>/sync`` with ``REQUEST=doQuery``,
    ``LANG=ADQL``, ``FORMAT=votable|csv`` from ``services.datalab.format``, ``QUERY``);
    VOTable answers are read with pyvo (a TAP error status becomes a clear error). Data
    Lab column names are lowercase and equal our native Legacy names.
    """

    service = "datalab"
    releases = RELEASES["legacy"]
    formats = ("votable", "csv")

    def adql(self, unit, limit: int) -> str:
        ra = num(unit.ra, "ra", -360, 720)
        dec = num(unit.dec, "dec", -90, 90)
        r = num(unit.radius, "radius", 0, 180)
        return (f"SELECT TOP {integer(limit, 'row_limit')} {', '.join(self.columns)} "
                f"FROM {LEGACY_TABLES[self.release]} "
                f"WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r})) = 1")

    def request(self, unit, limit):
        q = self.adql(unit, limit)
        return {"url": f"{self.settings.url}/sync", "method": "POST", "query": q,
                "data": {"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": self.fmt,
                         "QUERY": q},
                "ext": "vot" if self.fmt == "votable" else "csv"}

    def read(self, body):
        return parse_votable(body, self.service) if self.fmt == "votable" \
            else parse_csv(body, self.service)
