"""Pan-STARRS1 stack table through the MAST catalogs API (``services.mast``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ...net import ParseError
from ..schema import NATIVE_COLUMNS, RELEASES
from .base import LiveProvider, integer, num, parse_csv, query_string, text

#: MAST catalogs API releases of the PS1 stack table
PS1_RELEASES = RELEASES["ps1"]


def parse_mast_json(body: bytes, service: str = "mast") -> pd.DataFrame:
    """MAST catalogs API JSON (``{"info": [{"name": ..}], "data": [[..]]}``) -> DataFrame."""
    try:
        doc = json.loads(text(body, service))
        names = [c["name"] for c in doc["info"]]
        rows = doc["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"{service}: malformed JSON answer ({exc})") from None
    if rows and isinstance(rows[0], dict):
        return pd.DataFrame(rows, columns=names).astype(object)
    return pd.DataFrame(rows, columns=names, dtype=object)


class PS1MASTProvider(LiveProvider):
    """Pan-STARRS1 stack table via the MAST catalogs API (``panstarrs/<release>/stack``).

    Only ``primaryDetection=1`` rows are requested (one row per object). PS1 has no
    extinction column: ``ebv`` is added as NaN (no dust map offline); normalization then
    applies no extinction correction and the common ``ebv`` stays NaN, which is the flag
    (see docs/live.md).
    """

    service = "mast"
    releases = PS1_RELEASES
    formats = ("csv", "json")

    def native_columns(self):
        return [c for c in NATIVE_COLUMNS["ps1"] if c != "ebv"]

    def request(self, unit, limit):
        params = {"ra": num(unit.ra, "ra", -360, 720), "dec": num(unit.dec, "dec", -90, 90),
                  "radius": num(unit.radius, "radius", 0, 180),
                  "columns": "[" + ",".join(self.columns) + "]",
                  "primaryDetection": "1", "pagesize": integer(limit, "row_limit"),
                  "page": "1"}
        url = f"{self.settings.url}/panstarrs/{self.release}/stack.{self.fmt}"
        return {"url": url, "method": "GET", "query": query_string(url, params),
                "params": params, "ext": self.fmt}

    def read(self, body):
        return parse_mast_json(body, self.service) if self.fmt == "json" \
            else parse_csv(body, self.service)

    def finish(self, df):
        df = df.copy()
        df["ebv"] = np.nan  # no offline dust map: documented flag, see docs/live.md
        return df
