"""What every live catalog service shares: :class:`LiveProvider` and the CSV parsing.

How one partition is queried
----------------------------
The planner (:mod:`catclean.catalogs.planner`) turns the host cones touching the
partition into query units; each unit asks for at most ``row_limit`` rows (``TOP`` /
``pagesize``), and a unit whose answer reaches the limit is split into sub-pixel units,
recursively. All requests go through the service's :class:`catclean.net.Fetcher`
(retries, cache, bounded concurrency). Answers are concatenated, de-duplicated on the
native object id and filtered exactly with
:func:`~catclean.catalogs.geometry.in_cones_and_pixel` (the same rule as the synthetic
provider), then sorted by position, so the output does not depend on how the queries
were split. A row the service returns with a NaN, infinite or out-of-range position has
no pixel: it stays in the partition whose query returned it (logged), and
``cut_valid_position`` flags it; it is never dropped.

Safety: query text is built only from finite floats and integers formatted by
:func:`num` / :func:`integer` and from the fixed column lists in
:data:`~catclean.catalogs.schema.NATIVE_COLUMNS`; table names and URLs come from fixed
release maps and the config's service URLs. No configuration string is interpolated into
SQL or ADQL (an unknown release is rejected with the list of known ones).
"""

from __future__ import annotations

import io
import logging
import math
import re

import numpy as np
import pandas as pd

from ...net import Fetcher, ParseError, SchemaError, ServiceError, ServiceSettings, redact
from ..base import CatalogProvider
from ..geometry import in_cones_and_pixel, valid_position
from ..planner import Unit, plan_units, split_unit
from ..schema import _NATIVE_INT, _NATIVE_STR, ID_COLUMN, NATIVE_COLUMNS, POSITION_COLUMNS

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- validated literals -----------------------------------------------------------------
def num(x, name: str, lo: float = -math.inf, hi: float = math.inf) -> str:
    """A finite float in [lo, hi] formatted for a query (never a string from outside)."""
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {type(x).__name__} {x!r}")
    v = float(x)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be a finite number in [{lo}, {hi}], got {x!r}")
    return f"{v:.9f}"


def integer(x, name: str, lo: int = 1, hi: int = 10**9) -> str:
    """An integer in [lo, hi] formatted for a query."""
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


def query_string(url: str, params: dict) -> str:
    """``url?k=v&...``: the human-readable query recorded in provenance and errors."""
    return url + "?" + "&".join(f"{k}={v}" for k, v in params.items())


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
            numeric = pd.to_numeric(s, errors="raise")
        except (ValueError, TypeError) as exc:
            raise ParseError(f"{service}: column {c!r} is not numeric ({exc})") from None
        if c in _NATIVE_INT.get(survey, set()):
            if numeric.isna().any():
                out[c] = numeric.astype("Int64")
            else:
                # large ids (SDSS objID ~1.2e18) must not pass through float
                out[c] = pd.Series([_to_int(v) for v in s], dtype="int64") \
                    if s.dtype == object else numeric.astype("int64")
        else:
            out[c] = numeric.astype("float64")
    return out


def _to_int(v) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return int(float(v))


def text(body: bytes, service: str) -> str:
    """The body as UTF-8 text (a ParseError otherwise)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{service}: answer is not UTF-8 text ({exc})") from None


def parse_csv(body: bytes, service: str) -> pd.DataFrame:
    """CSV answer (optionally preceded by SkyServer's ``#Table1`` line) -> DataFrame."""
    lines = text(body, service).splitlines()
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


# -- the provider ---------------------------------------------------------------------------
class LiveProvider(CatalogProvider):
    """Common machinery: planning, splitting, fetching, filtering, provenance.

    Parameters
    ----------
    survey, release : str
    services : dict
        The resolved ``services`` config section (``services.<service>`` over the
        top-level connection settings; ``cache_dir``, ``refetch``).
    fetcher : catclean.net.Fetcher, optional
    """

    service = ""
    #: the releases the service has (config strings outside them never reach a URL)
    releases: tuple[str, ...] = ()
    #: answer formats of ``services.<service>.format`` (empty: the service has one)
    formats: tuple[str, ...] = ()

    def __init__(self, survey: str, release: str, services: dict,
                 fetcher: Fetcher | None = None):
        self.survey = survey
        self.release = self.check_release(release)
        self.settings = ServiceSettings.from_config(self.service, services)
        self.settings.url = self.settings.url.replace("{release}", self.release)
        self.fetcher = fetcher or Fetcher(self.settings, self.release,
                                          cache_dir=services["cache_dir"],
                                          refetch=services["refetch"])
        self.columns = _columns(self.native_columns())
        self._records: list[dict] = []

    def check_release(self, release: str) -> str:
        if release not in self.releases:
            raise ValueError(f"surveys.{self.survey}.release {release!r}: known releases "
                             f"{sorted(self.releases)}")
        return release

    @property
    def fmt(self) -> str:
        """The configured answer format (one of :attr:`formats`)."""
        fmt = str(self.settings.extra["format"]).lower()
        if fmt not in self.formats:
            raise ValueError(f"services.{self.service}.format must be one of "
                             f"{list(self.formats)}, got {fmt!r}")
        return fmt

    # subclasses -------------------------------------------------------------------------

    def native_columns(self) -> list[str]:
        return NATIVE_COLUMNS[self.survey]

    def request(self, unit: Unit, limit: int) -> dict:
        """``{url, method, params, data, query, ext}`` of one cone query."""
        raise NotImplementedError

    def read(self, body: bytes) -> pd.DataFrame:
        """The answer body as a DataFrame (columns as the service names them)."""
        raise NotImplementedError

    def finish(self, df: pd.DataFrame) -> pd.DataFrame:
        return df

    # machinery --------------------------------------------------------------------------
    def parse(self, body: bytes) -> pd.DataFrame:
        """The answer body as the survey's typed native columns."""
        df = self.read(body)
        if df.empty and not len(df.columns):
            df = pd.DataFrame(columns=self.columns)
        return conform_native(df, self.survey, self.service, self.columns)

    def _fetch(self, unit: Unit) -> tuple[Unit, pd.DataFrame, dict]:
        req = self.request(unit, self.settings.row_limit)
        got = self.fetcher.fetch(req["url"], parse=self.parse, query=req["query"],
                                 params=req.get("params"), data=req.get("data"),
                                 method=req["method"], ext=req["ext"])
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
        while units:
            nxt: list[Unit] = []
            for unit, df, rec in self.fetcher.map(self._fetch, units):
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
            out = pd.concat(parts, ignore_index=True) if len(parts) > 1 \
                else parts[0].reset_index(drop=True)
        else:
            out = conform_native(pd.DataFrame(columns=self.columns), self.survey,
                                 self.service, self.columns)
        out = out.drop_duplicates(subset=[ID_COLUMN[self.survey]]).reset_index(drop=True)
        rac, decc = POSITION_COLUMNS[self.survey]
        ra, dec = out[rac].to_numpy(float), out[decc].to_numpy(float)
        # a row without a valid position came back from this partition's query: keep it
        # here (cut_valid_position flags it downstream), never drop it silently
        keep = in_cones_and_pixel(ra, dec, cones, int(hpx), int(nside), keep_invalid=True)
        n_bad = int((~valid_position(ra, dec)).sum())
        if n_bad:
            log.warning("%s %s hpx=%d: %d row(s) with NaN/out-of-range position kept in "
                        "this partition and flagged (cut_valid_position)", self.survey,
                        self.release, hpx, n_bad)
        out = out[keep]
        out = out.sort_values([rac, decc], kind="stable").reset_index(drop=True)
        log.info("%s %s hpx=%d: %d requests (%d answered from cache), %d rows kept",
                 self.survey, self.release, hpx, len(self._records), self.n_from_cache,
                 len(out))
        return self.finish(out)

    def describe(self) -> dict:
        recs = sorted(self._records, key=lambda r: r["query_sha256"] or "")
        return {**super().describe(), "service": self.service, "url": redact(self.settings.url),
                "row_limit": self.settings.row_limit,
                "query": [r["query"] for r in recs],
                "responses": [{k: r[k] for k in ("url", "query_sha256", "sha256",
                                                  "fetched_utc", "rows")} for r in recs]}

    @property
    def n_from_cache(self) -> int:
        """How many answers of the last query came from the cache (not in provenance, so
        provenance is identical on a rerun from cache)."""
        return sum(bool(r.get("from_cache")) for r in self._records)
