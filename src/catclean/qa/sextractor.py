"""Source Extractor backend (the real binary, Bertin & Arnouts 1996), as in paper 000.

Runs ``source-extractor`` (Debian/Ubuntu package ``source-extractor``; older installs
call it ``sex``) on one CCD written to a temporary FITS file and returns the same
measurement columns as :func:`catclean.qa.extract.extract_sep`, plus Source Extractor's
own ``CLASS_STAR`` (which then replaces the sep stellarity classifier):

==========  ==========================================
column      Source Extractor parameter
==========  ==========================================
x, y        X_IMAGE - 1, Y_IMAGE - 1 (0-based pixels)
npix        ISO0 (isophotal area at the lowest level)
a, b        A_IMAGE, B_IMAGE
theta       THETA_IMAGE (converted to radians)
flux        FLUX_ISO, snr = FLUX_ISO / FLUXERR_ISO
peak        FLUX_MAX + BACKGROUND
r50         FLUX_RADIUS (PHOT_FLUXFRAC = 0.5)
back        BACKGROUND (local background at the centroid)
flag        FLAGS
class_star  CLASS_STAR
==========  ==========================================
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .measurements import ExtractConfig, QAInputError, empty_measurements

PARAMS = ["X_IMAGE", "Y_IMAGE", "ISO0", "A_IMAGE", "B_IMAGE", "THETA_IMAGE", "FLUX_ISO",
          "FLUXERR_ISO", "FLUX_MAX", "FLUX_RADIUS", "BACKGROUND", "FLAGS", "CLASS_STAR"]
NNW_CANDIDATES = ("/usr/share/source-extractor/default.nnw", "/usr/share/sextractor/default.nnw",
                  "/usr/local/share/sextractor/default.nnw",
                  "/usr/local/share/source-extractor/default.nnw")


def find_binary() -> str | None:
    """Path of the Source Extractor executable, or None."""
    for name in ("source-extractor", "sex"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _find_nnw() -> str | None:
    for p in NNW_CANDIDATES:
        if Path(p).exists():
            return p
    return None


def _global_stats(data: np.ndarray) -> tuple[float, float]:
    """Sigma-clipped median and rms of a pixel subsample (ADU)."""
    sub = data[::4, ::4]
    sub = sub[np.isfinite(sub)].astype(np.float64)
    med, rms = float(np.median(sub)), float(1.4826 * np.median(np.abs(sub - np.median(sub))))
    for _ in range(3):
        keep = np.abs(sub - med) < 3 * max(rms, 1e-6)
        med, rms = float(np.median(sub[keep])), float(np.std(sub[keep]))
    return med, rms


def extract_sextractor(data: np.ndarray, cfg: ExtractConfig, exptime: float,
                       pixel_scale: float, seeing_fwhm: float = 0.8,
                       gain: float = 1.6, saturation: float = 65535.0):
    """Run Source Extractor on one CCD (float32 ADU array); same outputs as extract_sep."""
    from astropy.io import fits

    exe = find_binary()
    if exe is None:
        raise QAInputError("qa.extract.backend=sextractor but no 'source-extractor' or 'sex' "
                           "executable is on PATH (Debian/Ubuntu: apt-get install source-extractor)")
    nnw = _find_nnw()
    with tempfile.TemporaryDirectory(prefix="catclean_sex_") as tmp:
        tmp = Path(tmp)
        img = tmp / "ccd.fits"
        fits.PrimaryHDU(np.where(np.isfinite(data), data, 0).astype(np.float32)).writeto(img)
        (tmp / "qa.param").write_text("\n".join(PARAMS if nnw else PARAMS[:-1]) + "\n")
        (tmp / "qa.conv").write_text("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
        cat = tmp / "cat.fits"
        cmd = [exe, str(img), "-c", "/dev/null", "-CATALOG_NAME", str(cat),
               "-CATALOG_TYPE", "FITS_1.0", "-PARAMETERS_NAME", str(tmp / "qa.param"),
               "-FILTER", "Y", "-FILTER_NAME", str(tmp / "qa.conv"),
               "-DETECT_THRESH", str(cfg.thresh), "-ANALYSIS_THRESH", str(cfg.thresh),
               "-DETECT_MINAREA", str(cfg.minarea), "-DEBLEND_NTHRESH", "32",
               "-DEBLEND_MINCONT", str(cfg.deblend_cont), "-BACK_SIZE", str(cfg.back_size),
               "-BACK_FILTERSIZE", str(cfg.back_filter), "-PIXEL_SCALE", str(pixel_scale),
               "-SEEING_FWHM", str(seeing_fwhm), "-GAIN", str(gain),
               "-SATUR_LEVEL", str(saturation), "-MAG_ZEROPOINT", "26.2",
               "-PHOT_FLUXFRAC", "0.5", "-VERBOSE_TYPE", "QUIET", "-CHECKIMAGE_TYPE", "NONE",
               "-MEMORY_PIXSTACK", str(max(300_000, data.size // 4)),
               "-MEMORY_OBJSTACK", "20000", "-MEMORY_BUFSIZE", "2048"]
        if nnw:
            cmd += ["-STARNNW_NAME", nnw]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if res.returncode != 0 or not cat.exists():
            raise QAInputError(f"Source Extractor failed (exit {res.returncode}): "
                               f"{res.stderr.strip()[-300:]}")
        with fits.open(cat) as h:
            t = h[2].data if len(h) > 2 else h[1].data
            t = np.asarray(t) if t is not None else None
    back, rms = _global_stats(data)
    info = {"globalback": back, "globalrms": rms, "back": None}

    if t is None or len(t) == 0:
        out = empty_measurements()
        out["class_star"] = np.zeros(0)
        return out, info
    if len(t) > cfg.max_sources:
        t = t[np.argsort(-t["FLUX_ISO"])[: cfg.max_sources]]
    f = lambda k: np.asarray(t[k], np.float64)  # noqa: E731
    err = np.where(f("FLUXERR_ISO") > 0, f("FLUXERR_ISO"), np.inf)
    meas = {
        "x": f("X_IMAGE") - 1.0, "y": f("Y_IMAGE") - 1.0, "npix": f("ISO0"),
        "a": np.maximum(f("A_IMAGE"), 1e-3), "b": f("B_IMAGE"),
        "theta": np.deg2rad(f("THETA_IMAGE")), "flux": f("FLUX_ISO"),
        "peak": f("FLUX_MAX") + f("BACKGROUND"), "r50": f("FLUX_RADIUS"),
        "snr": f("FLUX_ISO") / err, "back": f("BACKGROUND"),
        "flag": np.asarray(t["FLAGS"], np.int32),
        "class_star": f("CLASS_STAR") if nnw else np.full(len(t), np.nan),
    }
    return meas, info
