"""HTTP for the live services: one retrying, caching fetcher shared by every client.

Every raw response body that parses is cached on disk, keyed by service, release and the
sha256 of the request (method, URL, parameters)::

    <cache_dir>/<service>/<release>/<key>.<ext>    the raw bytes the service returned
    <cache_dir>/<service>/<release>/<key>.json     sidecar: service, release, url, query,
                                                   params, sha256 of the body, bytes,
                                                   fetch time (UTC), HTTP status

Both files are written atomically (temporary file + rename) and the sidecar last, so an
interrupted run never leaves an entry that looks complete but is not; an entry whose body
does not match the sidecar's sha256 is ignored and refetched. ``refetch=True`` ignores the
cache (the new answer replaces the old entry).

Retries (exponential backoff ``backoff * 2**attempt`` seconds, capped at ``backoff_max``):
HTTP 429 (waiting ``Retry-After`` when the server sends it), 5xx, timeouts, dropped
connections, truncated bodies (fewer bytes than ``Content-Length``) and bodies that fail
to parse. Other 4xx answers fail at once. The final error is a :class:`ServiceError`
naming the service, URL, HTTP status and query.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

USER_AGENT = "catclean (https://github.com/catclean; galaxy catalog cleaning pipeline)"

#: keys every service section accepts, with their defaults
SERVICE_DEFAULTS = {
    "timeout": 60.0,        # s, connect + read (per request)
    "retries": 5,           # extra attempts after the first
    "backoff": 1.0,         # s, first wait; doubles each attempt
    "backoff_max": 60.0,    # s, cap on one wait (also caps Retry-After)
    "row_limit": 100000,    # rows, most a single catalog query may return
    "concurrency": 4,       # parallel requests to this service from one job
}


class ServiceError(RuntimeError):
    """A request to a live service failed for good (after retries, or not retryable)."""

    def __init__(self, service: str, url: str, status: int | None, query: str, reason: str):
        self.service, self.url, self.status, self.query, self.reason = (
            service, url, status, query, reason)
        q = query if len(query) <= 2000 else query[:2000] + "...[truncated]"
        super().__init__(f"{service}: {reason} (url={url}, status={status}, query={q})")


class ParseError(ValueError):
    """A response body is malformed or truncated (retried: a fresh answer may be whole)."""


class SchemaError(ValueError):
    """A well-formed response lacks what we asked for (not retried)."""


@dataclass
class ServiceSettings:
    """Connection settings of one service (see ``services`` in config/README.md)."""

    name: str
    url: str
    timeout: float = SERVICE_DEFAULTS["timeout"]
    retries: int = SERVICE_DEFAULTS["retries"]
    backoff: float = SERVICE_DEFAULTS["backoff"]
    backoff_max: float = SERVICE_DEFAULTS["backoff_max"]
    row_limit: int = SERVICE_DEFAULTS["row_limit"]
    concurrency: int = SERVICE_DEFAULTS["concurrency"]
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, name: str, services: Mapping | None, default_url: str
                    ) -> ServiceSettings:
        """Settings of service ``name``: ``services.<name>`` over the ``services`` defaults."""
        services = dict(services or {})
        own = dict(services.get(name) or {})
        vals = {k: own.get(k, services.get(k, v)) for k, v in SERVICE_DEFAULTS.items()}
        extra = {k: v for k, v in own.items() if k not in SERVICE_DEFAULTS and k != "url"}
        return cls(name=name, url=str(own.get("url") or default_url).rstrip("/"),
                   timeout=float(vals["timeout"]), retries=int(vals["retries"]),
                   backoff=float(vals["backoff"]), backoff_max=float(vals["backoff_max"]),
                   row_limit=int(vals["row_limit"]), concurrency=max(1, int(vals["concurrency"])),
                   extra=extra)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return max(0.0, (when - _dt.datetime.now(_dt.UTC)).total_seconds())


@dataclass
class Fetched:
    """A parsed response and its provenance record (the cache sidecar)."""

    value: Any
    record: dict
    body: bytes = b""


class Fetcher:
    """Retrying, caching HTTP client of one service and release.

    Parameters
    ----------
    settings : ServiceSettings
    release : str
        Data release (part of the cache key and path).
    cache_dir : path-like or None
        Root of the response cache; ``None`` disables caching.
    refetch : bool
        Ignore cached answers (and overwrite them).
    session : requests.Session, optional
    sleep : callable, optional
        Replaces :func:`time.sleep` (tests).
    """

    def __init__(self, settings: ServiceSettings, release: str,
                 cache_dir: str | os.PathLike | None = None, refetch: bool = False,
                 session=None, sleep: Callable[[float], None] = time.sleep):
        import requests

        self.settings, self.release = settings, release
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.refetch = bool(refetch)
        self._local = threading.local()
        self._session = session
        self._requests = requests
        self.sleep = sleep

    # -- plumbing ---------------------------------------------------------------------
    @property
    def session(self):
        if self._session is not None:
            return self._session
        s = getattr(self._local, "session", None)
        if s is None:  # one Session per thread (requests sessions are not thread-safe)
            s = self._requests.Session()
            s.headers["User-Agent"] = USER_AGENT
            self._local.session = s
        return s

    def cache_key(self, method: str, url: str, params: Mapping | None,
                  data: Mapping | None) -> str:
        blob = json.dumps({"service": self.settings.name, "release": self.release,
                           "method": method.upper(), "url": url,
                           "params": sorted((str(k), str(v)) for k, v in (params or {}).items()),
                           "data": sorted((str(k), str(v)) for k, v in (data or {}).items())},
                          sort_keys=True)
        return sha256_bytes(blob.encode())

    def _paths(self, key: str, ext: str) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        d = self.cache_dir / self.settings.name / self.release
        return d / f"{key}.{ext}", d / f"{key}.json"

    def _from_cache(self, key: str, ext: str) -> tuple[bytes, dict] | None:
        paths = self._paths(key, ext)
        if paths is None or self.refetch:
            return None
        body_p, side_p = paths
        if not (body_p.exists() and side_p.exists()):
            return None
        try:
            rec = json.loads(side_p.read_text())
            body = body_p.read_bytes()
        except (OSError, ValueError):
            return None
        if rec.get("sha256") != sha256_bytes(body):
            log.warning("%s: cache entry %s does not match its checksum; refetching",
                        self.settings.name, body_p)
            return None
        return body, rec

    def _store(self, key: str, ext: str, body: bytes, rec: dict) -> dict:
        paths = self._paths(key, ext)
        if paths is None:
            return rec
        body_p, side_p = paths
        atomic_write_bytes(body_p, body)
        rec = {**rec, "cache_file": str(body_p)}
        atomic_write_bytes(side_p, json.dumps(rec, indent=1, sort_keys=True).encode())
        return rec

    def _wait(self, attempt: int, retry_after: float | None = None) -> float:
        s = self.settings
        wait = s.backoff * 2**attempt
        if retry_after is not None:
            wait = max(wait, retry_after)
        wait = min(wait, s.backoff_max)
        self.sleep(wait)
        return wait

    # -- the one public call ------------------------------------------------------------
    def fetch(self, url: str, *, parse: Callable[[bytes], Any], query: str = "",
              params: Mapping | None = None, data: Mapping | None = None,
              method: str = "GET", ext: str = "dat") -> Fetched:
        """Fetch ``url`` (cache first), parse the body, cache it, return both.

        ``parse`` turns the raw bytes into the value; it raises :class:`ParseError` for a
        malformed body (retried) or :class:`SchemaError` for a well-formed body that lacks
        what was asked (raised at once as a :class:`ServiceError`).
        """
        s = self.settings
        key = self.cache_key(method, url, params, data)
        hit = self._from_cache(key, ext)
        if hit is not None:
            body, rec = hit
            try:
                value = parse(body)
            except (ParseError, SchemaError) as exc:
                log.warning("%s: cached answer %s does not parse (%s); refetching",
                            s.name, rec.get("cache_file"), exc)
            else:
                return Fetched(value, {**rec, "from_cache": True}, body)
        req = self._requests
        status: int | None = None
        reason = "no attempt made"
        for attempt in range(s.retries + 1):
            retry_after = None
            try:
                resp = self.session.request(method, url, params=params, data=data,
                                            timeout=s.timeout)
                status = resp.status_code
                if status == 429 or status >= 500:
                    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                    reason = f"HTTP {status} {resp.reason}: {resp.text[:300]!r}"
                elif status >= 400:
                    raise ServiceError(s.name, resp.url, status, query,
                                       f"HTTP {status} {resp.reason}: {resp.text[:500]!r}")
                else:
                    body = resp.content
                    expected = resp.headers.get("Content-Length")
                    if (expected is not None and "Content-Encoding" not in resp.headers
                            and expected.isdigit() and int(expected) != len(body)):
                        raise ParseError(f"truncated body: {len(body)} of {expected} bytes")
                    value = parse(body)
                    rec = {"service": s.name, "release": self.release, "url": resp.url,
                           "base_url": url, "query": query,
                           "params": {str(k): str(v) for k, v in (params or {}).items()},
                           "data": {str(k): str(v) for k, v in (data or {}).items()},
                           "method": method.upper(), "status": status,
                           "query_sha256": key, "sha256": sha256_bytes(body),
                           "bytes": len(body), "fetched_utc": utc_now()}
                    rec = self._store(key, ext, body, rec)
                    return Fetched(value, {**rec, "from_cache": False}, body)
            except ServiceError:
                raise
            except SchemaError as exc:
                raise ServiceError(s.name, url, status, query, str(exc)) from None
            except ParseError as exc:
                reason = f"unreadable response: {exc}"
            except req.exceptions.Timeout as exc:
                status, reason = None, f"timeout after {s.timeout} s ({type(exc).__name__})"
            except (req.exceptions.ConnectionError, req.exceptions.ChunkedEncodingError,
                    req.exceptions.ContentDecodingError) as exc:
                status, reason = None, f"connection failed or body truncated: {exc}"
            if attempt < s.retries:
                wait = self._wait(attempt, retry_after)
                log.warning("%s: attempt %d/%d failed (%s); retrying in %.2f s", s.name,
                            attempt + 1, s.retries + 1, reason, wait)
        raise ServiceError(s.name, url, status, query,
                           f"failed after {s.retries + 1} attempts; last: {reason}")
