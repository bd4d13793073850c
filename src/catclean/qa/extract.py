"""Reading MegaCam-like exposures and per-CCD source extraction (paper 000 Sec. 3.1).

The paper runs Source Extractor on every CCD and keeps ISO0, ELLIPTICITY, BACKGROUND and
CLASS_STAR plus the EXPTIME header keyword. The default backend here is ``sep`` (the
Source Extractor algorithms as a library); :mod:`.sextractor` runs the real binary and
returns the same columns. Both return one table per CCD with the columns of
:data:`MEASUREMENT_COLUMNS`; bad input never raises from inside a library: it becomes a
:class:`QAInputError` (whole exposure unusable) or a per-CCD status with a reason.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from catclean.runtime import configure_sep

from .measurements import (  # noqa: F401 (re-exported: the extraction API)
    MEASUREMENT_COLUMNS,
    ExtractConfig,
    QAInputError,
    empty_measurements,
)


def read_exposure(path: str | Path):
    """Open a MegaCam-like multi-extension FITS file.

    Returns
    -------
    exptime : float
        EXPTIME in seconds (from the primary header, else the first CCD header).
    hdul : astropy.io.fits.HDUList
        The open file; CCD extensions are ``hdul[1:]`` (use as a context manager).

    Raises
    ------
    QAInputError
        If the file is missing or not readable FITS, has no image extensions, or has no
        valid EXPTIME.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.exists():
        raise QAInputError(f"exposure file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a truncated file is reported below, by name
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            hdul.verify("silentfix")
        n_ext = len(hdul) - 1
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, ...
        raise QAInputError(f"corrupt FITS file {path.name}: {type(exc).__name__}: {exc}") from None
    if n_ext < 1:
        hdul.close()
        raise QAInputError(f"{path.name}: no CCD extensions (truncated or corrupt FITS file)")
    exptime = hdul[0].header.get("EXPTIME", hdul[1].header.get("EXPTIME"))
    try:
        exptime = float(exptime)
    except (TypeError, ValueError):
        hdul.close()
        raise QAInputError(f"{path.name}: missing or invalid EXPTIME header keyword") from None
    if not np.isfinite(exptime) or exptime <= 0:
        hdul.close()
        raise QAInputError(f"{path.name}: invalid EXPTIME={exptime}")
    return exptime, hdul


#: primary-header keyword giving the number of CCD extensions (MegaCam files carry it)
CCD_COUNT_KEYWORD = "NEXTEND"


def expected_ccds(hdul, plan_n_ccd: int | None = None) -> tuple[int, str]:
    """How many CCD extensions the exposure should have, and where that number came from.

    The primary header's ``NEXTEND`` (as MegaCam files carry it) wins; without it the
    plan's count (``plan_n_ccd``, e.g. ``n_ccd`` of the exposure table); without both,
    the extensions actually present (a truncation is then undetectable).
    """
    value = hdul[0].header.get(CCD_COUNT_KEYWORD)
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if n >= 1:
        return n, f"{CCD_COUNT_KEYWORD}={n} in the primary header"
    if plan_n_ccd is not None and int(plan_n_ccd) >= 1:
        return int(plan_n_ccd), f"n_ccd={int(plan_n_ccd)} of the plan"
    return len(hdul) - 1, "extensions present (no NEXTEND, no plan)"


def read_ccd(hdu) -> tuple[np.ndarray | None, str]:
    """CCD pixels as float32 and ``''``, or None and why the data cannot be read (a
    truncated or corrupt extension)."""
    try:
        data = hdu.data
    except Exception as exc:  # astropy: ValueError 'cannot reshape' on a cut extension
        return None, f"{type(exc).__name__}: {exc}"
    if data is None or data.ndim != 2:
        return None, ""
    return np.asarray(data, dtype=np.float32), ""


def ccd_data(hdu) -> np.ndarray | None:
    """CCD pixels as native float32, or None when the extension cannot be decoded."""
    try:
        data = hdu.data
    except Exception:
        return None
    if data is None or data.ndim != 2:
        return None
    return np.asarray(data, dtype=np.float32)


def all_finite(data: np.ndarray) -> bool:
    """True when no pixel is NaN or infinite: a NaN or inf makes the sum non-finite, and
    one float32 sum is several times cheaper than ``np.isfinite(data).all()`` (an
    overflowing sum only sends the check to the exact test)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(data, axis=None)):
            return True
    return bool(np.isfinite(data).all())


def ccd_status(data: np.ndarray | None) -> tuple[str, str]:
    """Classify a CCD before extraction: ('ok'|'dead'|'bad', reason)."""
    if data is None:
        return "bad", "unreadable CCD extension"
    finite_pixels = data  # the usual case: no mask, no copy of the finite pixels
    if not all_finite(data):
        finite = np.isfinite(data)
        if not finite.any():
            return "bad", "all pixels NaN"
        finite_pixels = data[finite]
    if not np.any(finite_pixels):
        return "dead", "all pixels zero (dead CCD)"
    sub = data[::7, ::7]
    sub = sub[np.isfinite(sub)]
    if sub.size == 0 or np.ptp(sub) == 0:
        return "bad", "constant image (no signal)"
    return "ok", ""


def extract_sep(data: np.ndarray, cfg: ExtractConfig, configure: bool = True):
    """Detect and measure sources with sep.

    Parameters
    ----------
    data : (ny, nx) float32 array, ADU. NaN pixels are masked.
    cfg : extraction parameters.
    configure : set sep's global limits for this image first
        (:func:`catclean.runtime.configure_sep`); False when the caller set them once
        for a whole exposure (:func:`process_exposure`).

    Returns
    -------
    meas : dict of arrays (:data:`MEASUREMENT_COLUMNS`)
    bkg_info : dict with ``globalback`` and ``globalrms`` (ADU).
    """
    import sep

    if configure:
        configure_sep(data.size)
    mask = None if all_finite(data) else ~np.isfinite(data)
    if mask is not None:
        data = np.where(mask, 0.0, data).astype(np.float32)
    data = np.ascontiguousarray(data, dtype=np.float32)
    bkg = sep.Background(data, mask=mask, bw=cfg.back_size,
                         bh=cfg.back_size, fw=cfg.back_filter, fh=cfg.back_filter)
    rms = float(bkg.globalrms)
    info = {"globalback": float(bkg.globalback), "globalrms": rms}
    if not np.isfinite(rms) or rms <= 0:
        return empty_measurements(), info
    # subtract in place on a copy: sep evaluates the background spline row by row
    # instead of materialising the full-CCD map first (3-5x faster than data - back());
    # the background at a source is then data - sub there
    sub = data.copy()
    bkg.subfrom(sub)
    try:
        obj = sep.extract(sub, cfg.thresh, err=rms, mask=mask,
                          minarea=cfg.minarea, deblend_cont=cfg.deblend_cont)
    except Exception as exc:  # e.g. "internal pixel buffer full"
        raise QAInputError(f"sep extraction failed: {exc}") from None
    if len(obj) == 0:
        return empty_measurements(), info
    if len(obj) > cfg.max_sources:
        obj = obj[np.argsort(-obj["flux"])[: cfg.max_sources]]
    x, y = obj["x"].astype(np.float64), obj["y"].astype(np.float64)
    a = np.maximum(obj["a"].astype(np.float64), 1e-3)
    r50, _ = sep.flux_radius(sub, x, y, np.clip(6.0 * a, 3.0, 200.0), 0.5,
                             normflux=obj["flux"], subpix=5)
    ny, nx = data.shape
    iy = np.clip(np.rint(y).astype(int), 0, ny - 1)
    ix = np.clip(np.rint(x).astype(int), 0, nx - 1)
    flux = obj["flux"].astype(np.float64)
    npix = obj["npix"].astype(np.float64)
    back = (data[iy, ix] - sub[iy, ix]).astype(np.float64)
    meas = {
        "x": x, "y": y, "npix": npix, "a": a, "b": obj["b"].astype(np.float64),
        "theta": obj["theta"].astype(np.float64), "flux": flux,
        "peak": obj["peak"].astype(np.float64) + back,
        "r50": np.asarray(r50, np.float64),
        "snr": flux / (rms * np.sqrt(np.maximum(npix, 1.0))),
        "back": back, "flag": obj["flag"].astype(np.int32),
    }
    return meas, info


def match_truth(meas: dict, truth_x, truth_y, truth_mag, truth_star, radius: float = 3.0):
    """Star/galaxy truth of detections: the brightest truth source within ``radius`` pixels.

    Returns an int8 array: 1 star, 0 galaxy or spurious (no truth source nearby).
    """
    from scipy.spatial import cKDTree

    n = len(meas["x"])
    out = np.zeros(n, np.int8)
    if n == 0 or len(truth_x) == 0:
        return out
    tree = cKDTree(np.column_stack([truth_x, truth_y]))
    hits = tree.query_ball_point(np.column_stack([meas["x"], meas["y"]]), r=radius)
    mag = np.asarray(truth_mag)
    star = np.asarray(truth_star, bool)
    for i, h in enumerate(hits):
        if h:
            out[i] = int(star[h[int(np.argmin(mag[h]))]])
    return out


def stellar_reference(r50: np.ndarray, snr: np.ndarray) -> float:
    """Half-light radius (pixels) of the CCD's stellar locus.

    The 20th percentile of r50 among sources with S/N > 20 (stars are the most compact
    bright objects); falls back to all sources, then to 2 pixels.
    """
    ok = np.isfinite(r50) & (r50 > 0)
    sel = ok & (snr > 20)
    if sel.sum() >= 5:
        return float(np.percentile(r50[sel], 20))
    if ok.sum() >= 3:
        return float(np.percentile(r50[ok], 20))
    return 2.0


def _read_and_measure(hdu, k: int, name: str, cfg: ExtractConfig, exptime: float,
                      pixel_scale: float):
    """Read CCD ``k`` (:func:`read_ccd`), drop the HDU's cached copy (so that only the
    returned array holds the pixels) and measure it (:func:`measure_ccd`).

    Returns ((status, reason, meas, info), pixels); an unreadable extension is a
    'missing' CCD whose reason names the file.
    """
    data, err = read_ccd(hdu)
    try:
        del hdu.data  # astropy caches .data on the HDU; without this every CCD stays
    except Exception:  # noqa: BLE001 - nothing cached (unreadable extension)
        pass
    if err:
        return ("missing", f"{name}: CCD {k} unreadable (truncated or corrupt): {err}",
                None, None), None
    return measure_ccd(data, cfg, exptime, pixel_scale), data


def measure_ccd(data: np.ndarray | None, cfg: ExtractConfig, exptime: float,
                pixel_scale: float) -> tuple[str, str, dict | None, dict | None]:
    """Status and measurements of one CCD: (status, reason, meas, info).

    ``meas``/``info`` are those of :func:`extract_sep` or
    :func:`~catclean.qa.sextractor.extract_sextractor` (``info``: ``globalback`` and
    ``globalrms`` only), None unless the status is 'ok'. sep's global limits must be set
    (:func:`catclean.runtime.configure_sep`).
    """
    status, reason = ccd_status(data)
    if status != "ok":
        return status, reason, None, None
    if cfg.backend == "sextractor":
        from .sextractor import extract_sextractor

        meas, info = extract_sextractor(data, cfg, exptime, pixel_scale)
    elif cfg.backend == "sep":
        meas, info = extract_sep(data, cfg, configure=False)
    else:
        raise ValueError(f"qa.extract.backend: unknown backend {cfg.backend!r}")
    return status, reason, meas, {"globalback": info["globalback"],
                                  "globalrms": info["globalrms"]}


def _worker_init(pixels: int) -> None:
    """Pool worker set-up: one thread of BLAS, sep's limits for the largest CCD."""
    from catclean.runtime import set_threads

    set_threads(1)
    configure_sep(pixels)


#: the exposure a pool worker has open: ((path, mtime_ns, size), exptime, hdul)
_WORKER_OPEN: list = []


def _worker_ccd(path: str, k: int, cfg: ExtractConfig, pixel_scale: float):
    """Pool task: read CCD ``k`` of ``path`` only and measure it (:func:`_read_and_measure`).

    The file is opened as :func:`read_exposure` does, once per worker and exposure (the
    open file is kept for the worker's next CCD of the same, unchanged, file).
    """
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if not _WORKER_OPEN or _WORKER_OPEN[0][0] != key:
        while _WORKER_OPEN:
            _WORKER_OPEN.pop()[2].close()
        exptime, hdul = read_exposure(path)
        _WORKER_OPEN.append((key, exptime, hdul))
    _, exptime, hdul = _WORKER_OPEN[0]
    return _read_and_measure(hdul[k + 1], k, Path(path).name, cfg, exptime, pixel_scale)[0]


def ccd_pool(n_workers: int, pixels: int = 4612 * 2048):
    """A process pool for :func:`process_exposure` (``n_workers`` processes, all started
    now).

    sep 1.4 holds the GIL in ``Background`` and ``extract``, so threads would run CCDs one
    after the other: CCDs are extracted in worker processes instead. They are forked
    (``spawn`` and ``forkserver`` re-run the ``__main__`` module in every worker, which for
    a Snakemake rule script means re-running the rule); create the pool early in a job,
    before TensorFlow runs anything, and reuse it for every exposure. The workers only
    use numpy, astropy and sep, with one BLAS thread; ``pixels`` (the largest CCD) sets
    sep's limits once per worker (:func:`catclean.runtime.configure_sep`). Use it as a
    context manager or call ``shutdown()``.
    """
    import gc
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    n_workers = max(1, int(n_workers))
    pool = ProcessPoolExecutor(n_workers, mp_context=mp.get_context("fork"),
                               initializer=_worker_init, initargs=(int(pixels),))
    # the workers' garbage collector must not walk (and so copy) the parent's objects
    gc.freeze()
    try:
        list(pool.map(_noop, range(n_workers)))  # start every worker now
    finally:
        gc.unfreeze()
    return pool


def _noop(_):
    return None


def _max_ccd_pixels(hdul) -> int:
    """Pixels of the largest CCD extension, from the headers (no pixels read)."""
    sizes = [int(h.header.get("NAXIS1", 0) or 0) * int(h.header.get("NAXIS2", 0) or 0)
             for h in hdul[1:]]
    return max(sizes, default=0)


def process_exposure(path: str | Path, cfg: ExtractConfig, pixel_scale: float, expid=None,
                     truth: pd.DataFrame | None = None, keep_data: dict | None = None,
                     n_ccd: int | None = None, pool=None):
    """Extract sources from every CCD of one exposure (the extraction driver).

    CCDs are read one at a time (lazily, the previous one freed before the next is
    read), so memory holds a few CCDs whatever their number. With ``pool`` (a
    :func:`ccd_pool`) the CCDs are extracted in its worker processes, each reading only
    its own CCD from the file; the tables are identical to the serial ones, row for row.

    Parameters
    ----------
    path : exposure FITS file.
    cfg : extraction parameters; ``cfg.backend`` selects sep or Source Extractor.
    pixel_scale : arcsec per pixel (``simulate.pixel_scale``; Source Extractor's seeing).
    expid : identifier stored in the output tables (default: file stem).
    truth : optional per-source truth (columns ccd, x, y, mag, is_star) for the
        star/galaxy label ``is_star`` of each detection.
    keep_data : if a dict, the pixels of every usable CCD are stored in it (CCD index ->
        float32 array); this keeps every CCD in memory (serial path only). Prefer
        :class:`ExposurePixels`, which reads stamps lazily.
    n_ccd : the plan's CCD count, used when the primary header lacks ``NEXTEND``
        (:func:`expected_ccds`).
    pool : a :func:`ccd_pool`, or None to extract in this process.

    Returns
    -------
    ccds : pandas.DataFrame
        One row per *expected* CCD: expid, ccd, status ('ok', 'dead', 'bad', 'empty',
        'missing'), reason, globalback, globalrms (ADU), n_src, r_ref (pixels), exptime
        (s). A CCD absent from a truncated file, or whose data cannot be read, is a
        ``missing`` row with a reason naming the file; it is never silently lost.
    sources : pandas.DataFrame
        One row per detection with :data:`catclean.qa.extract.MEASUREMENT_COLUMNS`,
        expid, ccd, r_ref, exptime, class_star (NaN for sep) and is_star (-1 unknown).

    Raises
    ------
    QAInputError
        When the whole exposure is unusable (corrupt file, missing EXPTIME).
    """
    if pool is not None and keep_data is not None:
        raise ValueError("keep_data needs the serial path (pool=None); use ExposurePixels")
    expid = Path(path).stem if expid is None else expid
    exptime, hdul = read_exposure(path)
    name = Path(path).name
    ccd_rows, tables = [], []
    with hdul:
        n_expected, source = expected_ccds(hdul, n_ccd)
        n_present = len(hdul) - 1
        if pool is None:
            configure_sep(_max_ccd_pixels(hdul))

            def measured():
                for k in range(n_present):
                    res, data = _read_and_measure(hdul[k + 1], k, name, cfg, exptime,
                                                  pixel_scale)
                    if keep_data is not None and res[0] == "ok":
                        keep_data[k] = data
                    del data
                    yield res

            results = measured()
        else:
            results = pool.map(_worker_ccd, [str(path)] * n_present, range(n_present),
                               [cfg] * n_present, [pixel_scale] * n_present)
        for k, (status, reason, meas, info) in enumerate(results):
            row, t = _ccd_tables(expid, k, status, reason, meas, info, exptime, truth)
            ccd_rows.append(row)
            if t is not None:
                tables.append(t)
        for k in range(n_present, max(n_expected, n_present)):
            row, _ = _ccd_tables(expid, k, "missing", None, None, None, exptime, truth)
            row["reason"] = (f"{name}: CCD {k} absent: the file ends after {n_present} "
                             f"of {n_expected} CCD extensions ({source}); truncated")
            ccd_rows.append(row)
    ccds = pd.DataFrame(ccd_rows)
    sources = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["expid", "ccd", *list(MEAS_ALL)])
    return ccds, sources


def _ccd_tables(expid, k, status, reason, meas, info, exptime, truth):
    """The CCD row and the source table (None when no sources) of one measured CCD."""
    row = {"expid": expid, "ccd": k, "status": status, "reason": reason,
           "globalback": np.nan, "globalrms": np.nan, "n_src": 0, "r_ref": np.nan,
           "exptime": exptime}
    if status != "ok":
        return row, None
    row["globalback"], row["globalrms"] = info["globalback"], info["globalrms"]
    n = len(meas["x"])
    row["n_src"] = n
    if n == 0:
        row["status"], row["reason"] = "empty", "no sources detected"
        return row, None
    t = pd.DataFrame(meas)
    if "class_star" not in t:
        t["class_star"] = np.nan
    t.insert(0, "ccd", k)
    t.insert(0, "expid", expid)
    rref = stellar_reference(t["r50"].to_numpy(), t["snr"].to_numpy())
    row["r_ref"] = rref
    t["r_ref"] = rref
    t["exptime"] = exptime
    t["rel_back"] = (t["back"] - info["globalback"]) / info["globalrms"]
    t["is_star"] = np.int8(-1)
    if truth is not None:
        tt = truth[truth["ccd"] == k]
        t["is_star"] = match_truth(meas, tt["x"].to_numpy(), tt["y"].to_numpy(),
                                   tt["mag"].to_numpy(), tt["is_star"].to_numpy())
    return row, t


class ExposurePixels:
    """Lazy, read-only access to the CCD pixels of an exposure file, for stamps.

    ``pixels[k]`` is CCD ``k`` as an object with ``shape`` and 2-D slicing that reads
    only the rows of the requested rectangle from the file (astropy ``section``, float32
    like :func:`ccd_data`), so cutting stamps never loads a whole CCD. Use as a context
    manager.
    """

    def __init__(self, path: str | Path):
        from astropy.io import fits

        self._hdul = fits.open(path, memmap=False, lazy_load_hdus=True)

    def __getitem__(self, k: int) -> _LazyCCD:
        return _LazyCCD(self._hdul[int(k) + 1])

    def close(self) -> None:
        self._hdul.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _LazyCCD:
    def __init__(self, hdu):
        self._hdu = hdu
        self.shape = (int(hdu.header["NAXIS2"]), int(hdu.header["NAXIS1"]))

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], slice):
            # a full-width band of rows is one contiguous read; a partial-width
            # rectangle would be read row by row
            return np.asarray(np.asarray(self._hdu.section[key[0], :])[:, key[1]],
                              dtype=np.float32)
        return np.asarray(self._hdu.section[key], dtype=np.float32)


MEAS_ALL = ("x", "y", "npix", "a", "b", "theta", "flux", "peak", "r50", "snr", "back", "flag",
            "class_star", "r_ref", "exptime", "rel_back", "is_star")
