"""Client of the Legacy Surveys viewer cutout service (FITS cubes and JPEG RGB).

Endpoints (``services.legacy_viewer.url``)::

    cutout.fits?ra=..&dec=..&layer=ls-dr9&pixscale=0.262&bands=grz&size=N
        -> primary HDU, data (3, N, N) float32 in nanomaggies (g, r, z), TAN WCS header
    cutout.jpg?ra=..&dec=..&layer=ls-dr9&pixscale=0.469&size=128
        -> the JPEG RGB the published shred CNN was trained on (128 px over 60 arcsec)

Every answer goes through :class:`catclean.net.Fetcher` (retries with backoff on
429/5xx/timeouts/truncated bodies; on-disk cache keyed by the request when a cache
directory is given). Answers that arrive but hold no usable image are classified with
the statuses of :data:`catclean.cutouts.store.CUTOUT_STATUS`:

- ``off_footprint``: every pixel is exactly 0 (the viewer fills area without coverage
  with zeros, FITS and JPEG alike);
- ``blank``: a band (FITS) or the whole image (JPEG) is constant -- no signal;
- ``corrupt``: not a FITS/JPEG, wrong shape, or more than half the pixels non-finite.

:meth:`LegacyCutoutClient.fetch_fits` / :meth:`~LegacyCutoutClient.fetch_jpeg` raise
:class:`CutoutUnavailable` (with ``.status`` and ``.reason``) for those;
:meth:`~LegacyCutoutClient.try_fetch_fits` / ``try_fetch_jpeg`` return a
:class:`CutoutResult` instead. Service failures after retries raise
:class:`catclean.net.ServiceError` (naming the URL, status and request).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from ...net import Fetcher, ParseError, ServiceSettings
from .base import query_string

#: release -> viewer layer
LAYERS = {"dr9": "ls-dr9", "dr10": "ls-dr10"}
MAX_SIZE = 3000  # px, the viewer's largest cutout


class CutoutUnavailable(RuntimeError):
    """The service answered, but with no usable image (blank / off footprint / corrupt)."""

    def __init__(self, status: str, reason: str):
        self.status, self.reason = status, reason
        super().__init__(f"{status}: {reason}")


@dataclass
class CutoutResult:
    """Outcome of one cutout request: data (or None), header, status and reason."""

    data: np.ndarray | None
    header: object | None
    status: str
    reason: str = ""


def _check_num(x, name, lo, hi) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {x!r}")
    v = float(x)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be finite and in [{lo}, {hi}], got {x!r}")
    return f"{v:.7f}".rstrip("0").rstrip(".")


def _check_size(size) -> str:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or \
            not 1 <= int(size) <= MAX_SIZE:
        raise ValueError(f"size must be an integer in [1, {MAX_SIZE}] px, got {size!r}")
    return str(int(size))


def classify_cube(cube: np.ndarray, bands: str = "grz") -> tuple[str, str]:
    """``(status, reason)`` of a (nband, H, W) flux cube."""
    finite = np.isfinite(cube)
    if finite.mean() < 0.5:
        return "corrupt", f"{100 * (1 - finite.mean()):.0f}% of pixels are not finite"
    if np.all(cube[finite] == 0):
        return "off_footprint", "all pixels are 0 (no survey coverage)"
    for b, plane in zip(bands, cube):
        vals = plane[np.isfinite(plane)]
        if vals.size == 0 or np.all(vals == vals[0]):
            return "blank", f"band {b} is constant ({vals[0] if vals.size else 'NaN'})"
    return "ok", ""


def classify_rgb(img: np.ndarray) -> tuple[str, str]:
    """``(status, reason)`` of a uint8 (H, W, 3) image."""
    if img.max() == 0:
        return "off_footprint", "all pixels are black (no survey coverage)"
    if np.all(img == img.reshape(-1, img.shape[-1])[0]):
        return "blank", "image is a single constant colour"
    return "ok", ""


class LegacyCutoutClient:
    """Fetch Legacy viewer cutouts.

    Parameters
    ----------
    services : dict
        The resolved ``services`` config section (``legacy_viewer`` sub-section: url,
        timeout, retries, backoff, concurrency; ``cache_dir``, ``refetch``).
    release : str
        ``dr9`` or ``dr10`` (mapped to the viewer layer ``ls-dr9`` / ``ls-dr10``).
    fetcher : catclean.net.Fetcher, optional
        Its cache holds every answer (raw bytes, checked by sha256), so a killed run
        resumes without refetching; its pool bounds the concurrent requests.
    """

    service = "legacy_viewer"

    def __init__(self, services: dict, release: str, fetcher: Fetcher | None = None):
        if release not in LAYERS:
            raise ValueError(f"legacy release {release!r}: known {sorted(LAYERS)}")
        self.release, self.layer = release, LAYERS[release]
        self.settings = ServiceSettings.from_config(self.service, services)
        self.fetcher = fetcher or Fetcher(self.settings, release,
                                          cache_dir=services["cache_dir"],
                                          refetch=services["refetch"])
        self.last_record: dict = {}

    @property
    def concurrency(self) -> int:
        return self.settings.concurrency

    # -- FITS -----------------------------------------------------------------------------
    def _fits_request(self, ra, dec, size, pixscale, bands):
        if bands not in ("grz", "g", "r", "z", "gr", "rz", "gz"):
            raise ValueError(f"bands must be a subset of 'grz' in order, got {bands!r}")
        params = {"ra": _check_num(ra, "ra", 0, 360), "dec": _check_num(dec, "dec", -90, 90),
                  "layer": self.layer, "pixscale": _check_num(pixscale, "pixscale", 0.01, 60),
                  "bands": bands, "size": _check_size(size)}
        return f"{self.settings.url}/cutout.fits", params

    @staticmethod
    def _parse_fits(body: bytes, size: int, nband: int):
        from astropy.io import fits

        try:
            with fits.open(io.BytesIO(body)) as hdul:
                hdul.verify("silentfix")
                hdu = hdul[0]
                data = None if hdu.data is None else np.array(hdu.data, dtype=np.float32)
                header = hdu.header.copy()
        except Exception as exc:  # noqa: BLE001 - any FITS failure is an unreadable body
            raise ParseError(f"not a readable FITS file ({type(exc).__name__}: {exc})"
                             ) from None
        return data, header

    def try_fetch_fits(self, ra, dec, size: int, pixscale: float, bands: str = "grz"
                       ) -> CutoutResult:
        """Like :meth:`fetch_fits` but returns the status instead of raising for it."""
        url, params = self._fits_request(ra, dec, size, pixscale, bands)
        query = query_string(url, params)

        def parse(body):
            try:
                return self._parse_fits(body, int(size), len(bands))
            except ParseError as exc:
                if body[:6] == b"SIMPLE":  # a FITS cut short: retry
                    raise
                return ("corrupt", str(exc))

        got = self.fetcher.fetch(url, parse=parse, query=query, params=params, ext="fits")
        self.last_record = got.record
        if got.value and isinstance(got.value[0], str):
            return CutoutResult(None, None, *got.value)
        data, header = got.value
        if data is None:
            return CutoutResult(None, header, "corrupt", "FITS has no image data")
        if data.ndim == 2 and len(bands) == 1:
            data = data[None]
        if data.shape != (len(bands), int(size), int(size)):
            return CutoutResult(None, header, "corrupt",
                                f"shape {data.shape}, expected {(len(bands), size, size)}")
        status, reason = classify_cube(data, bands)
        return CutoutResult(data if status == "ok" else None, header, status, reason)

    def fetch_fits(self, ra, dec, size: int, pixscale: float, bands: str = "grz"):
        """Flux cube of one position.

        Parameters
        ----------
        ra, dec : float
            ICRS centre (deg).
        size : int
            Side (pixels).
        pixscale : float
            arcsec / pixel (0.262 is the native Legacy scale).
        bands : str

        Returns
        -------
        cube : ndarray, float32, shape (nband, size, size)
            Nanomaggies, bands in the order of ``bands``.
        header : astropy.io.fits.Header
            With the TAN WCS of the cutout.

        Raises
        ------
        CutoutUnavailable
            ``blank`` / ``off_footprint`` / ``corrupt`` answers.
        catclean.net.ServiceError
            The service failed after retries.
        """
        r = self.try_fetch_fits(ra, dec, size, pixscale, bands)
        if r.status != "ok":
            raise CutoutUnavailable(r.status, r.reason)
        return r.data, r.header

    # -- JPEG -----------------------------------------------------------------------------
    def jpeg_request(self, ra, dec, size: int, pixscale: float) -> tuple[str, dict]:
        """``(url, params)`` of the ``cutout.jpg`` request of one position (raises
        ``ValueError`` for a non-finite or out-of-range position, scale or size)."""
        params = {"ra": _check_num(ra, "ra", 0, 360), "dec": _check_num(dec, "dec", -90, 90),
                  "layer": self.layer, "pixscale": _check_num(pixscale, "pixscale", 0.01, 60),
                  "size": _check_size(size)}
        return f"{self.settings.url}/cutout.jpg", params

    def try_fetch_jpeg(self, ra, dec, size: int, pixscale: float) -> CutoutResult:
        """Like :meth:`fetch_jpeg` but returns the status instead of raising for it."""
        from PIL import Image, UnidentifiedImageError

        url, params = self.jpeg_request(ra, dec, size, pixscale)
        query = query_string(url, params)

        def parse(body):
            if body[:2] != b"\xff\xd8":
                return ("corrupt", f"not a JPEG (starts {body[:16]!r})")
            try:
                with Image.open(io.BytesIO(body)) as im:
                    im.load()
                    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            except (UnidentifiedImageError, OSError) as exc:
                # a JPEG header but undecodable data: most likely cut short -> retry
                raise ParseError(f"undecodable JPEG ({exc})") from None

        got = self.fetcher.fetch(url, parse=parse, query=query, params=params, ext="jpg")
        self.last_record = got.record
        if isinstance(got.value, tuple):
            return CutoutResult(None, None, *got.value)
        img = got.value
        if img.shape != (int(size), int(size), 3):
            return CutoutResult(None, None, "corrupt",
                                f"shape {img.shape}, expected {(size, size, 3)}")
        status, reason = classify_rgb(img)
        return CutoutResult(img if status == "ok" else None, None, status, reason)

    def fetch_jpeg(self, ra, dec, size: int, pixscale: float) -> np.ndarray:
        """RGB JPEG cutout as uint8 (size, size, 3); raises :class:`CutoutUnavailable`."""
        r = self.try_fetch_jpeg(ra, dec, size, pixscale)
        if r.status != "ok":
            raise CutoutUnavailable(r.status, r.reason)
        return r.data
