"""Live survey catalog providers: Legacy Surveys (Data Lab TAP), SDSS (SkyServer SQL),
Pan-STARRS1 (MAST catalogs API), behind the :class:`~.providers.CatalogProvider` interface.

Entry points used by the rest of catclean:

- :func:`get_live_provider` (called by :func:`catclean.catalogs.providers.get_provider`),
- :func:`load_nsa_hosts` (called by :func:`catclean.catalogs.hosts_io.load_hosts`; the
  NSA reader lives in :mod:`.live_nsa`).

How one partition is queried
----------------------------
A *query unit* is a cone (centre, radius). If a host cone is at least as large as the
partition pixel, the partition is covered by one cone circumscribing the pixel; otherwise
every host cone touching the pixel is one unit. Each unit asks for at most
``row_limit`` rows (``TOP`` / ``pagesize``); an answer that reaches the limit may be cut
short, so the unit is split into the nested HEALPix sub-pixels (at higher nside) of its
region that intersect it, each queried with its circumscribing cone, recursively.
Answers are concatenated, de-duplicated on the native object id and filtered exactly
with :func:`~.providers.in_cones_and_pixel` (the same rule as the synthetic provider),
then sorted by position, so the output does not depend on how the queries were split.

Safety: query text is built only from finite floats and integers formatted by this
module and from the fixed column lists in :data:`~.schema.NATIVE_COLUMNS`; table names
and URLs come from fixed release maps. No configuration string is interpolated into SQL
or ADQL (an unknown release is rejected with the list of known ones).
"""

from __future__ import annotations

import io
import logging
import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..net import Fetcher, ParseError, SchemaError, ServiceError, ServiceSettings
from .providers import POSITION_COLUMNS, CatalogProvider, angular_separation_deg, in_cones_and_pixel
from .schema import _NATIVE_INT, _NATIVE_STR, NATIVE_COLUMNS

log = logging.getLogger(__name__)

#: default base URLs (``services.<name>.url`` overrides them)
DEFAULT_URLS = {
    "datalab": "https://datalab.noirlab.edu/tap",
    "skyserver": "https://skyserver.sdss.org/{release}/SkyServerWS/SearchTools/SqlSearch",
    "mast": "https://catalogs.mast.stsci.edu/api/v0.1",
    "legacy_viewer": "https://www.legacysurvey.org/viewer",
}
#: service of each survey
SURVEY_SERVICE = {"legacy": "datalab", "sdss": "skyserver", "ps1": "mast"}
#: release -> Data Lab table
LEGACY_TABLES = {"dr9": "ls_dr9.tractor", "dr10": "ls_dr10.tractor"}
#: SkyServer releases with the SqlSearch endpoint and the PhotoPrimary view
SDSS_RELEASES = ("dr16", "dr17", "dr18")
#: MAST catalogs API releases of the PS1 stack table
PS1_RELEASES = ("dr2",)
#: finest sub-pixel nside a query may be split to (~0.2 arcsec pixels)
MAX_SPLIT_NSIDE = 2**20

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- validated literals -----------------------------------------------------------------
def _num(x, name: str, lo: float = -math.inf, hi: float = math.inf) -> str:
    """A finite float in [lo, hi] formatted for a query (never a string from outside)."""
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {type(x).__name__} {x!r}")
    v = float(x)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be a finite number in [{lo}, {hi}], got {x!r}")
    return f"{v:.9f}"


def _int(x, name: str, lo: int = 1, hi: int = 10**9) -> str:
    if isinstance(x, bool) or not isinstance(x, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {type(x).__name__} {x!r}")
    if not lo <= int(x) <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {x!r}")
    return str(int(x))


def _columns(names) -> list[str]:
    for c in names:
        if not _IDENT.match(c):  # the fixed lists satisfy this; guards future edits
            raise ValueError(f"invalid column identifier {c!r}")
    return list(names)


# -- geometry of query units ------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """One cone query: centre and radius (deg), and the (nested) pixel it stands for."""

    ra: float
    dec: float
    radius: float
    nside: int
    pix: int


def _healpix(nside: int):
    from astropy_healpix import HEALPix

    return HEALPix(nside=nside, order="nested")


def pixel_cone(nside: int, pix: int) -> tuple[float, float, float]:
    """Centre (deg) and circumscribing radius (deg, padded 1%) of a nested pixel."""
    from astropy import units as u

    hp = _healpix(nside)
    lon, lat = hp.healpix_to_lonlat([pix])
    blon, blat = hp.boundaries_lonlat([pix], step=4)
    ra, dec = float(lon.to_value(u.deg)[0]), float(lat.to_value(u.deg)[0])
    sep = angular_separation_deg([ra], [dec], blon.to_value(u.deg)[0], blat.to_value(u.deg)[0])
    return ra, dec, float(sep.max()) * 1.01 + 1e-7


def plan_units(cones: pd.DataFrame, hpx: int, nside: int) -> list[Unit]:
    """The initial query units of partition ``hpx`` (see the module docstring)."""
    ok = cones[cones.host_status == "ok"]
    if ok.empty:
        return []
    pra, pdec, prad = pixel_cone(nside, hpx)
    sep = angular_separation_deg([pra], [pdec], ok.RA, ok.DEC)[0]
    rad = ok.radius_deg.to_numpy(float)
    touch = sep <= rad + prad
    if not touch.any():
        return []
    if (rad[touch] >= prad).any():
        return [Unit(pra, pdec, prad, nside, hpx)]
    return [Unit(float(r.RA), float(r.DEC), float(r.radius_deg) * (1 + 1e-6) + 1e-7,
                 nside, hpx) for r in ok[touch].itertuples()]


def split_unit(unit: Unit) -> list[Unit]:
    """Sub-pixel units covering ``unit``: nested children of its pixel, descended until
    their circumscribing cones are smaller than the unit, keeping those that intersect."""
    level = [(unit.nside, unit.pix)]
    while True:
        nside = level[0][0] * 2
        if nside > MAX_SPLIT_NSIDE:
            raise RuntimeError(f"cannot split query cone further (nside > {MAX_SPLIT_NSIDE})")
        children = []
        for _, p in level:
            for c in range(4 * p, 4 * p + 4):
                ra, dec, rad = pixel_cone(nside, c)
                if angular_separation_deg([ra], [dec], [unit.ra], [unit.dec])[0, 0] \
                        <= unit.radius + rad:
                    children.append((nside, c, ra, dec, rad))
        if not children:
            return []
        if max(ch[4] for ch in children) < unit.radius:
            return [Unit(ra, dec, rad, n, c) for n, c, ra, dec, rad in children]
        level = [(n, c) for n, c, *_ in children]


# -- parsing ----------------------------------------------------------------------------
def conform_native(df: pd.DataFrame, survey: str, service: str,
                   required: list[str] | None = None) -> pd.DataFrame:
    """Select and type the native columns of ``survey`` (names matched case-insensitively).

    Raises
    ------
    SchemaError
        Naming every required column the answer lacks.
    ParseError
        A numeric column holds text (a malformed answer).
    """
    required = required if required is not None else NATIVE_COLUMNS[survey]
    lower = {str(c).strip().lower(): c for c in df.columns}
    missing = [c for c in required if c.lower() not in lower]
    if missing:
        raise SchemaError(f"{service} answer for {survey} lacks required column(s) {missing}; "
                          f"it has {list(df.columns)}")
    out = pd.DataFrame(index=range(len(df)))
    for c in required:
        s = df[lower[c.lower()]].reset_index(drop=True)
        if c in _NATIVE_STR.get(survey, set()):
            out[c] = s.map(lambda v: v.decode() if isinstance(v, bytes) else v
                           ).astype("string").str.strip().astype(object)
            continue
        if s.dtype == object:
            s = s.map(lambda v: v.decode() if isinstance(v, bytes) else v)
        try:
            num = pd.to_numeric(s, errors="raise")
        except (ValueError, TypeError) as exc:
            raise ParseError(f"{service}: column {c!r} is not numeric ({exc})") from None
        if c in _NATIVE_INT.get(survey, set()):
            if num.isna().any():
                out[c] = num.astype("Int64")
            else:
                # large ids (SDSS objID ~1.2e18) must not pass through float
                out[c] = pd.Series([_to_int(v) for v in s], dtype="int64") \
                    if s.dtype == object else num.astype("int64")
        else:
            out[c] = num.astype("float64")
    return out


def _to_int(v) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return int(float(v))


def _text(body: bytes, service: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{service}: answer is not UTF-8 text ({exc})") from None


def parse_csv(body: bytes, service: str) -> pd.DataFrame:
    """CSV answer (optionally preceded by SkyServer's ``#Table1`` line) -> DataFrame."""
    text = _text(body, service)
    lines = text.splitlines()
    had_marker = bool(lines) and lines[0].strip().startswith("#Table")
    while lines and (lines[0].strip().startswith("#") or not lines[0].strip()):
        lines.pop(0)
    if not lines:
        if had_marker:  # SkyServer: a table marker and nothing else = no rows
            return pd.DataFrame()
        raise ParseError(f"{service}: empty answer (no CSV header)")
    head = lines[0].lstrip()
    if head.startswith("<") or head.upper().startswith("ERROR"):
        raise ParseError(f"{service}: answer is not CSV: {head[:200]!r}")
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise ParseError(f"{service}: malformed CSV: {exc}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.replace({"": None, "null": None, "NULL": None, "NaN": None, "nan": None})


def parse_mast_json(body: bytes, service: str = "mast") -> pd.DataFrame:
    """MAST catalogs API JSON (``{"info": [{"name": ..}], "data": [[..]]}``) -> DataFrame."""
    import json

    try:
        doc = json.loads(_text(body, service))
        names = [c["name"] for c in doc["info"]]
        rows = doc["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"{service}: malformed JSON answer ({exc})") from None
    if rows and isinstance(rows[0], dict):
        return pd.DataFrame(rows, columns=names).astype(object)
    return pd.DataFrame(rows, columns=names, dtype=object)


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


# -- providers ---------------------------------------------------------------------------
class LiveProvider(CatalogProvider):
    """Common machinery: planning, splitting, concurrent fetching, filtering, provenance."""

    service = ""

    def __init__(self, survey: str, release: str, services: dict | None = None,
                 fetcher: Fetcher | None = None):
        services = dict(services or {})
        self.survey, self.release = survey, self.check_release(release)
        default = DEFAULT_URLS[self.service]
        self.settings = ServiceSettings.from_config(self.service, services, default)
        self.settings.url = self.settings.url.replace("{release}", self.release)
        cache = services.get("cache_dir")
        self.fetcher = fetcher or Fetcher(self.settings, self.release, cache_dir=cache,
                                          refetch=bool(services.get("refetch", False)))
        self.columns = _columns(self.native_columns())
        self._records: list[dict] = []

    # subclasses -------------------------------------------------------------------------
    def check_release(self, release: str) -> str:  # pragma: no cover - abstract-ish
        raise NotImplementedError

    def native_columns(self) -> list[str]:
        return NATIVE_COLUMNS[self.survey]

    def request(self, unit: Unit, limit: int) -> dict:
        """``{url, method, params, data, query, ext}`` of one cone query."""
        raise NotImplementedError

    def parse(self, body: bytes) -> pd.DataFrame:
        raise NotImplementedError

    def finish(self, df: pd.DataFrame) -> pd.DataFrame:
        return df

    @property
    def id_column(self) -> str:
        return {"legacy": "ls_id", "sdss": "objID", "ps1": "objID"}[self.survey]

    # machinery --------------------------------------------------------------------------
    def _fetch(self, unit: Unit) -> tuple[Unit, pd.DataFrame, dict]:
        limit = self.settings.row_limit
        req = self.request(unit, limit)
        got = self.fetcher.fetch(req["url"], parse=self.parse, query=req["query"],
                                 params=req.get("params"), data=req.get("data"),
                                 method=req.get("method", "GET"), ext=req["ext"])
        df = got.value
        rec = {k: got.record.get(k) for k in ("url", "query", "query_sha256", "sha256",
                                                "fetched_utc", "cache_file", "from_cache")}
        rec["rows"] = len(df)
        return unit, df, rec

    def query(self, cones: pd.DataFrame, hpx: int, nside: int) -> pd.DataFrame:
        units = plan_units(cones, int(hpx), int(nside))
        self._records = []
        parts: list[pd.DataFrame] = []
        limit = self.settings.row_limit
        with ThreadPoolExecutor(max_workers=self.settings.concurrency,
                                thread_name_prefix=self.service) as pool:
            while units:
                nxt: list[Unit] = []
                for unit, df, rec in pool.map(self._fetch, units):
                    self._records.append(rec)
                    if len(df) >= limit:
                        log.info("%s: %d rows hit the row limit %d; splitting cone "
                                 "(%.5f, %.5f, r=%.5f deg)", self.service, len(df), limit,
                                 unit.ra, unit.dec, unit.radius)
                        try:
                            nxt.extend(split_unit(unit))
                        except RuntimeError as exc:
                            raise ServiceError(self.service, self.settings.url, None,
                                               rec["query"], f"row limit {limit}: {exc}"
                                               ) from None
                    else:
                        parts.append(df)
                units = nxt
        if parts:
            out = pd.concat([p for p in parts], ignore_index=True) if len(parts) > 1 \
                else parts[0].reset_index(drop=True)
        else:
            out = conform_native(pd.DataFrame(columns=self.columns), self.survey,
                                 self.service, self.columns)
        out = out.drop_duplicates(subset=[self.id_column]).reset_index(drop=True)
        rac, decc = POSITION_COLUMNS[self.survey]
        keep = in_cones_and_pixel(out[rac].to_numpy(float), out[decc].to_numpy(float),
                                  cones, int(hpx), int(nside))
        out = out[keep]
        out = out.sort_values([rac, decc], kind="stable").reset_index(drop=True)
        log.info("%s %s hpx=%d: %d requests (%d answered from cache), %d rows kept",
                 self.survey, self.release, hpx, len(self._records), self.n_from_cache,
                 len(out))
        return self.finish(out)

    def describe(self) -> dict:
        recs = sorted(self._records, key=lambda r: r["query_sha256"] or "")
        return {**super().describe(), "service": self.service, "url": self.settings.url,
                "row_limit": self.settings.row_limit,
                "query": [r["query"] for r in recs],
                "responses": [{k: r[k] for k in ("url", "query_sha256", "sha256",
                                                  "fetched_utc", "rows")} for r in recs]}

    @property
    def n_from_cache(self) -> int:
        """How many answers of the last query came from the cache (not in provenance, so
        provenance is identical on a rerun from cache)."""
        return sum(bool(r.get("from_cache")) for r in self._records)


class LegacyTAPProvider(LiveProvider):
    """Legacy Surveys Tractor catalogue (``ls_<release>.tractor``) via Data Lab TAP (sync).

    The request is the TAP sync protocol (``POST <url>/sync`` with ``REQUEST=doQuery``,
    ``LANG=ADQL``, ``FORMAT=votable|csv``, ``QUERY``); VOTable answers are read with pyvo
    (a TAP error status becomes a clear error). Data Lab column names are lowercase and
    equal our native Legacy names.
    """

    service = "datalab"

    def check_release(self, release):
        if release not in LEGACY_TABLES:
            raise ValueError(f"surveys.legacy.release {release!r}: known releases "
                             f"{sorted(LEGACY_TABLES)}")
        return release

    @property
    def fmt(self) -> str:
        fmt = str(self.settings.extra.get("format", "votable")).lower()
        if fmt not in ("votable", "csv"):
            raise ValueError(f"services.datalab.format must be votable or csv, got {fmt!r}")
        return fmt

    def adql(self, unit: Unit, limit: int) -> str:
        ra = _num(unit.ra, "ra", -360, 720)
        dec = _num(unit.dec, "dec", -90, 90)
        r = _num(unit.radius, "radius", 0, 180)
        return (f"SELECT TOP {_int(limit, 'row_limit')} {', '.join(self.columns)} "
                f"FROM {LEGACY_TABLES[self.release]} "
                f"WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r})) = 1")

    def request(self, unit, limit):
        q = self.adql(unit, limit)
        return {"url": f"{self.settings.url}/sync", "method": "POST", "query": q,
                "data": {"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": self.fmt,
                         "QUERY": q},
                "ext": "vot" if self.fmt == "votable" else "csv"}

    def parse(self, body):
        df = parse_votable(body, self.service) if self.fmt == "votable" \
            else parse_csv(body, self.service)
        if df.empty and not len(df.columns):
            df = pd.DataFrame(columns=self.columns)
        return conform_native(df, self.survey, self.service, self.columns)


class SDSSSkyServerProvider(LiveProvider):
    """SDSS PhotoPrimary (PhotoObj primary detections) via SkyServer ``SqlSearch`` (CSV).

    The cone is ``dbo.fGetNearbyObjEq(ra, dec, radius_arcmin)`` joined to
    ``PhotoPrimary`` (the PhotoObj view of primary detections, so one row per object).
    """

    service = "skyserver"

    def check_release(self, release):
        if release not in SDSS_RELEASES:
            raise ValueError(f"surveys.sdss.release {release!r}: known releases "
                             f"{list(SDSS_RELEASES)}")
        return release

    def sql(self, unit: Unit, limit: int) -> str:
        ra = _num(unit.ra, "ra", -360, 720)
        dec = _num(unit.dec, "dec", -90, 90)
        r_arcmin = _num(unit.radius * 60.0, "radius_arcmin", 0, 180 * 60)
        cols = ", ".join(f"p.{c}" for c in self.columns)
        return (f"SELECT TOP {_int(limit, 'row_limit')} {cols} "
                f"FROM dbo.fGetNearbyObjEq({ra}, {dec}, {r_arcmin}) AS n "
                f"JOIN PhotoPrimary AS p ON p.objID = n.objID")

    def request(self, unit, limit):
        q = self.sql(unit, limit)
        return {"url": self.settings.url, "method": "GET", "query": q,
                "params": {"cmd": q, "format": "csv"}, "ext": "csv"}

    def parse(self, body):
        df = parse_csv(body, self.service)
        if df.empty and not len(df.columns):
            df = pd.DataFrame(columns=self.columns)
        return conform_native(df, self.survey, self.service, self.columns)


class PS1MASTProvider(LiveProvider):
    """Pan-STARRS1 stack table via the MAST catalogs API (``panstarrs/<release>/stack``).

    Only ``primaryDetection=1`` rows are requested (one row per object). PS1 has no
    extinction column: ``ebv`` is added as NaN (no dust map offline); normalization then
    applies no extinction correction and the common ``ebv`` stays NaN, which is the flag
    (see docs/live.md).
    """

    service = "mast"

    def check_release(self, release):
        if release not in PS1_RELEASES:
            raise ValueError(f"surveys.ps1.release {release!r}: known releases "
                             f"{list(PS1_RELEASES)}")
        return release

    def native_columns(self):
        return [c for c in NATIVE_COLUMNS["ps1"] if c != "ebv"]

    @property
    def fmt(self) -> str:
        fmt = str(self.settings.extra.get("format", "csv")).lower()
        if fmt not in ("csv", "json"):
            raise ValueError(f"services.mast.format must be csv or json, got {fmt!r}")
        return fmt

    def request(self, unit, limit):
        params = {"ra": _num(unit.ra, "ra", -360, 720), "dec": _num(unit.dec, "dec", -90, 90),
                  "radius": _num(unit.radius, "radius", 0, 180),
                  "columns": "[" + ",".join(self.columns) + "]",
                  "primaryDetection": "1", "pagesize": _int(limit, "row_limit"), "page": "1"}
        url = f"{self.settings.url}/panstarrs/{self.release}/stack.{self.fmt}"
        query = url + "?" + "&".join(f"{k}={v}" for k, v in params.items())
        return {"url": url, "method": "GET", "query": query, "params": params,
                "ext": self.fmt}

    def parse(self, body):
        df = parse_mast_json(body, self.service) if self.fmt == "json" \
            else parse_csv(body, self.service)
        if df.empty and not len(df.columns):
            df = pd.DataFrame(columns=self.columns)
        return conform_native(df, self.survey, self.service, self.columns)

    def finish(self, df):
        df = df.copy()
        df["ebv"] = np.nan  # no offline dust map: documented flag, see docs/live.md
        return df


PROVIDERS = {"legacy": LegacyTAPProvider, "sdss": SDSSSkyServerProvider,
             "ps1": PS1MASTProvider}


def get_live_provider(survey: str, spec: dict, services: dict) -> LiveProvider:
    """The live provider of ``survey`` (``spec`` = ``config['surveys'][survey]``)."""
    if survey not in PROVIDERS:
        raise ValueError(f"no live provider for survey {survey!r}; known: {sorted(PROVIDERS)}")
    return PROVIDERS[survey](survey, spec["release"], services)


def load_nsa_hosts(cfg: dict) -> pd.DataFrame:
    """NSA v1_0_1 host table from ``config['hosts']`` (see :mod:`.live_nsa`)."""
    from .live_nsa import load_nsa_hosts as _load

    return _load(cfg)


def default_cache_dir(results: str | Path) -> Path:
    """``results/<run>/cache`` -- the default ``services.cache_dir``."""
    return Path(results) / "cache"
