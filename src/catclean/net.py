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

Deadline: ``timeout`` bounds each socket read; ``deadline`` (default: ``timeout``) bounds
the whole of one attempt of :meth:`Fetcher.fetch` (connection, headers and body), so a
server dripping a byte at a time cannot hold a request open. The body is read one
socket read at a time with the socket's timeout set to the time left.

Credentials: a URL's ``user:password@`` and the values of credential-like query or form
parameters (``token``, ``apikey``, ``password``, ...; :data:`SECRET_PARAMS`) are replaced
by ``***`` (:func:`redact`) in everything catclean writes: log lines, the cache sidecar,
error messages and provenance. The cache key is computed from the redacted request, so
rotating a password keeps the cache.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: bytes kept per read of a download: an interrupted read loses less than this
DOWNLOAD_CHUNK = 1 << 16

USER_AGENT = "catclean (https://github.com/catclean; galaxy catalog cleaning pipeline)"

#: connection settings of the ``services`` section: top-level values apply to every
#: service, ``services.<name>.<key>`` overrides them for one service (defaults in
#: ``workflow/schemas/services.schema.yaml``)
SERVICE_KEYS = ("timeout", "deadline", "retries", "backoff", "backoff_max", "row_limit",
                "concurrency")

#: query / form parameter names whose values are credentials (matched case-insensitively,
#: also as a suffix: ``x_api_key``, ``access_token``)
SECRET_PARAMS = ("token", "apikey", "api_key", "key", "password", "passwd", "pwd", "secret",
                 "auth", "authorization", "signature", "sig", "credential", "credentials",
                 "session", "sessionid")
_SECRET_NAME = re.compile(r"(?i)^(?:[a-z0-9_.-]*[_.-])?(?:" + "|".join(SECRET_PARAMS) + r")$")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s'\"]*@")
_SECRET_QS = re.compile(r"(?i)(?<![a-z0-9_])((?:[a-z0-9_.-]*[_.-])?(?:"
                        + "|".join(SECRET_PARAMS) + r"))(=|%3D)[^&#\s'\",;)]*")
REDACTED = "***"


class RedactingFilter(logging.Filter):
    """Redacts credentials in a log record's message (:func:`redact`); attached to the
    loggers of the HTTP libraries, whose DEBUG lines carry full URLs."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:
            return True
        red = redact(msg)
        if red != msg:
            record.msg, record.args = red, ()
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
    logging.getLogger(_name).addFilter(RedactingFilter())


def is_secret_param(name) -> bool:
    """Whether a query/form parameter name carries a credential (:data:`SECRET_PARAMS`)."""
    return bool(_SECRET_NAME.match(str(name)))


def redact(text) -> str:
    """``text`` with credentials replaced by ``***``: the ``user:password@`` of any URL
    and the value of any credential-like ``name=value`` pair (:data:`SECRET_PARAMS`)."""
    text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", str(text))
    return _SECRET_QS.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


def redact_params(params: Mapping | None) -> dict:
    """``{str(k): str(v)}`` with credential-like values replaced by ``***``."""
    return {str(k): (REDACTED if is_secret_param(k) else redact(v))
            for k, v in (params or {}).items()}


class ServiceError(RuntimeError):
    """A request to a live service failed for good (after retries, or not retryable)."""

    def __init__(self, service: str, url: str, status: int | None, query: str, reason: str):
        url, query, reason = redact(url), redact(query), redact(reason)
        self.service, self.url, self.status, self.query, self.reason = (
            service, url, status, query, reason)
        q = query if len(query) <= 2000 else query[:2000] + "...[truncated]"
        super().__init__(f"{service}: {reason} (url={url}, status={status}, query={q})")


class ParseError(ValueError):
    """A response body is malformed or truncated (retried: a fresh answer may be whole)."""


class SchemaError(ValueError):
    """A well-formed response lacks what we asked for (not retried)."""


class Transient(RuntimeError):
    """A failure worth retrying (HTTP 429/5xx, a body cut short), with ``Retry-After``."""

    def __init__(self, reason: str, retry_after: float | None = None):
        self.reason, self.retry_after = reason, retry_after
        super().__init__(reason)


@dataclass
class ServiceSettings:
    """Connection settings of one service (``services`` in the config schema).

    ``backoff_max`` (no cap), ``row_limit`` (none) and ``concurrency`` (1) have neutral
    values for a service built by hand; from the config every key is set. ``deadline``
    (s, total time of one attempt of :meth:`Fetcher.fetch`) None means ``timeout``.
    """

    name: str
    url: str
    timeout: float
    retries: int
    backoff: float
    backoff_max: float = float("inf")
    deadline: float | None = None
    row_limit: int | None = None
    concurrency: int = 1
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, name: str, services: Mapping) -> ServiceSettings:
        """Settings of service ``name``: ``services.<name>`` over the top-level values of
        the resolved ``services`` section (``url`` and the format come from the service's
        own section)."""
        own = dict(services[name])
        vals = {k: own[k] if own.get(k) is not None else services.get(k)
                for k in SERVICE_KEYS}
        extra = {k: v for k, v in own.items() if k not in SERVICE_KEYS and k != "url"}
        return cls(name=name, url=str(own["url"]).rstrip("/"),
                   timeout=float(vals["timeout"]),
                   deadline=None if vals["deadline"] is None else float(vals["deadline"]),
                   retries=int(vals["retries"]),
                   backoff=float(vals["backoff"]), backoff_max=float(vals["backoff_max"]),
                   row_limit=int(vals["row_limit"]), concurrency=max(1, int(vals["concurrency"])),
                   extra=extra)


def _total_deadline(settings: ServiceSettings) -> float:
    """Seconds one attempt may take in all (``deadline``, else ``timeout``)."""
    return float(settings.deadline if settings.deadline is not None else settings.timeout)


class DeadlineExceeded(RuntimeError):
    """One attempt ran past its total deadline (retried like a timeout)."""


def _socket_of(resp):
    """The socket under a streamed ``requests`` response (None if it cannot be found)."""
    conn = getattr(resp.raw, "_connection", None) or getattr(resp.raw, "connection", None)
    return getattr(conn, "sock", None)


def read_body(resp, deadline: float, limit_s: float) -> bytes:
    """Read a streamed response body, at most one socket read at a time, and give up
    with :class:`DeadlineExceeded` once ``time.monotonic()`` passes ``deadline``.

    Before each read the socket's timeout is set to the time left, so a server that
    sends a byte every half second, or stalls, is cut off at the deadline.
    """
    chunks = []
    sock = _socket_of(resp)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            resp.close()
            raise DeadlineExceeded(f"total deadline of {limit_s} s exceeded while reading "
                                   f"the body ({sum(map(len, chunks))} bytes read)")
        if sock is not None:
            try:
                sock.settimeout(max(0.01, left))
            except OSError:
                sock = None
        try:
            block = resp.raw.read1(DOWNLOAD_CHUNK, decode_content=True)
        except Exception as exc:  # socket timeout at the deadline, urllib3 errors
            if time.monotonic() >= deadline:
                resp.close()
                raise DeadlineExceeded(f"total deadline of {limit_s} s exceeded while "
                                       f"reading the body ({type(exc).__name__})") from None
            raise _as_requests_error(exc) from None
        if not block:
            return b"".join(chunks)
        chunks.append(block)


def _as_requests_error(exc: Exception) -> Exception:
    """urllib3's exceptions of a raw read as the ``requests`` ones (as ``iter_content``
    maps them), so the one retry policy sees a truncated body or a read timeout."""
    import requests
    from urllib3 import exceptions as u3

    if isinstance(exc, u3.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(exc)
    if isinstance(exc, u3.DecodeError):
        return requests.exceptions.ContentDecodingError(exc)
    if isinstance(exc, u3.ProtocolError | u3.SSLError | OSError):
        return requests.exceptions.ChunkedEncodingError(exc)
    return exc


def _error_text(resp, n: int) -> str:
    """At most ``n`` characters of an error answer, reading at most one socket read of a
    streamed body (a slow error page cannot hold the request open)."""
    try:
        if getattr(resp, "_content_consumed", False):
            return resp.text[:n]
        return resp.raw.read1(n, decode_content=True).decode("utf-8", "replace")[:n]
    except Exception:
        return ""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        self._lock = threading.Lock()
        #: answers this fetcher took from its cache / from the service
        self.stats: Counter = Counter(from_cache=0, fetched=0)

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
        # credentials do not change the answer: the key is that of the redacted request
        blob = json.dumps({"service": self.settings.name, "release": self.release,
                           "method": method.upper(), "url": redact(url),
                           "params": sorted(redact_params(params).items()),
                           "data": sorted(redact_params(data).items())},
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
                        self.settings.name, redact(body_p))
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

    # -- the one retry policy ----------------------------------------------------------
    def _retrying(self, url: str, query: str, attempt: Callable[[dict], Any]) -> Any:
        """Run ``attempt(state)`` until it returns, with the one retry/backoff policy.

        ``attempt`` raises :class:`Transient` (after a 429 or 5xx; with ``Retry-After``),
        :class:`ParseError` (a malformed or truncated body) or a ``requests`` timeout /
        connection error to be retried, :class:`SchemaError` or :class:`ServiceError` to
        fail at once. It records the last HTTP status in ``state["status"]``.
        """
        s, req = self.settings, self._requests
        state: dict = {"status": None}
        reason = "no attempt made"
        for n in range(s.retries + 1):
            retry_after = None
            try:
                return attempt(state)
            except ServiceError:
                raise
            except SchemaError as exc:
                raise ServiceError(s.name, url, state["status"], query, str(exc)) from None
            except Transient as exc:
                reason, retry_after = exc.reason, exc.retry_after
            except ParseError as exc:
                reason = f"unreadable response: {exc}"
            except DeadlineExceeded as exc:
                state["status"] = None
                reason = str(exc)
            except req.exceptions.Timeout as exc:
                state["status"] = None
                reason = f"timeout after {s.timeout} s ({type(exc).__name__})"
            except (req.exceptions.ConnectionError, req.exceptions.ChunkedEncodingError,
                    req.exceptions.ContentDecodingError) as exc:
                state["status"] = None
                reason = f"connection failed or body truncated: {exc}"
            reason = redact(reason)
            if n < s.retries:
                wait = self._wait(n, retry_after)
                log.warning("%s: attempt %d/%d failed (%s); retrying in %.2f s", s.name,
                            n + 1, s.retries + 1, reason, wait)
        raise ServiceError(s.name, url, state["status"], query,
                           f"failed after {s.retries + 1} attempts; last: {reason}")

    def _check_status(self, resp, state: dict, query: str) -> None:
        """Record the status; 429/5xx are :class:`Transient`, other 4xx fail at once."""
        status = state["status"] = resp.status_code
        if status == 429 or status >= 500:
            raise Transient(f"HTTP {status} {resp.reason}: {_error_text(resp, 300)!r}",
                            retry_after_seconds(resp.headers.get("Retry-After")))
        if status >= 400:
            raise ServiceError(self.settings.name, resp.url, status, query,
                               f"HTTP {status} {resp.reason}: {_error_text(resp, 500)!r}")

    # -- requests --------------------------------------------------------------------------
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
                self._count("from_cache")
                return Fetched(value, {**rec, "from_cache": True}, body)

        limit_s = _total_deadline(s)

        def attempt(state: dict) -> Fetched:
            deadline = time.monotonic() + limit_s
            resp = self.session.request(method, url, params=params, data=data,
                                        timeout=min(s.timeout, limit_s), stream=True)
            try:
                if time.monotonic() >= deadline:
                    raise DeadlineExceeded(f"total deadline of {limit_s} s exceeded "
                                           "before the body")
                self._check_status(resp, state, query)
                body = read_body(resp, deadline, limit_s)
            finally:
                resp.close()
            expected = resp.headers.get("Content-Length")
            if (expected is not None and "Content-Encoding" not in resp.headers
                    and expected.isdigit() and int(expected) != len(body)):
                raise ParseError(f"truncated body: {len(body)} of {expected} bytes")
            value = parse(body)
            rec = {"service": s.name, "release": self.release, "url": redact(resp.url),
                   "base_url": redact(url), "query": redact(query),
                   "params": redact_params(params), "data": redact_params(data),
                   "method": method.upper(), "status": state["status"],
                   "query_sha256": key, "sha256": sha256_bytes(body),
                   "bytes": len(body), "fetched_utc": utc_now()}
            rec = self._store(key, ext, body, rec)
            self._count("fetched")
            return Fetched(value, {**rec, "from_cache": False}, body)

        return self._retrying(url, query, attempt)

    def download(self, url: str, dest: str | os.PathLike,
                 expected_sha256: str | None = None) -> dict:
        """Download a (large) file ``url`` to ``dest`` once, resuming with HTTP ``Range``.

        The bytes go to ``<dest>.part``, appended to after an interruption, and the file
        appears as ``dest`` only when complete (rename); its sidecar ``<dest>.json``
        (url, sha256, bytes, fetched_utc) is written after it. A later call returns the
        sidecar without a request (unless ``refetch``). Retries follow the same policy
        as :meth:`fetch`; a body shorter than its ``Content-Length`` is resumed.

        Raises
        ------
        ServiceError
            After the retries, on a client error, or when the sha256 differs from
            ``expected_sha256`` (the partial file is then removed).
        ValueError
            A completed download's recorded sha256 differs from ``expected_sha256``.
        """
        s = self.settings
        dest = Path(dest)
        side = dest.with_name(dest.name + ".json")
        if dest.exists() and side.exists() and not self.refetch:
            rec = json.loads(side.read_text())
            if expected_sha256 and rec.get("sha256") != expected_sha256:
                raise ValueError(f"{s.name} file {dest}: recorded sha256 {rec.get('sha256')} "
                                 f"differs from the expected {expected_sha256}; delete it or "
                                 "fix the config")
            return rec
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        if self.refetch and part.exists():
            part.unlink()
        query = "GET " + url

        def attempt(state: dict) -> None:
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            with self.session.get(url, headers=headers, stream=True,
                                  timeout=s.timeout) as r:
                if r.status_code == 416 and have:  # already complete
                    state["status"] = r.status_code
                    return
                self._check_status(r, state, query)
                mode = "ab" if (r.status_code == 206 and have) else "wb"
                total = r.headers.get("Content-Length")
                total = int(total) + (have if mode == "ab" else 0) if total else None
                with open(part, mode) as fh:
                    for block in r.iter_content(DOWNLOAD_CHUNK):
                        fh.write(block)
            size = part.stat().st_size
            if total is not None and size < total:
                raise Transient(f"truncated: {size} of {total} bytes (resuming)")

        self._retrying(url, query, attempt)
        digest = sha256_file(part)
        if expected_sha256 and digest != expected_sha256:
            part.unlink()
            raise ServiceError(s.name, url, None, query, f"checksum mismatch: got sha256 "
                               f"{digest}, expected {expected_sha256}")
        os.replace(part, dest)
        rec = {"url": redact(url), "sha256": digest, "bytes": dest.stat().st_size,
               "fetched_utc": utc_now()}
        atomic_write_bytes(side, json.dumps(rec, indent=1).encode())
        self._count("fetched")
        return rec

    # -- concurrency -----------------------------------------------------------------------
    def map(self, fn: Callable[[Any], Any], items: Iterable) -> Iterator:
        """``fn`` over ``items`` on the service's bounded pool (``concurrency`` threads),
        results in the order of ``items``."""
        with ThreadPoolExecutor(max_workers=self.settings.concurrency,
                                thread_name_prefix=self.settings.name) as pool:
            yield from pool.map(fn, items)

    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1
