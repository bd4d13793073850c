"""Classify a fetched / rendered cutout into a ``cutout_status`` (see :mod:`.store`).

Rules (applied in order):

1. ``corrupt``: not an array, wrong shape, or any non-finite pixel (NaN / inf);
2. ``off_footprint``: less than ``min_coverage`` of the stamp has data (outside the
   rendered field or ``ivar == 0``; live cutouts: the no-data value over most of the
   stamp);
3. ``blank``: no signal -- all pixels equal (e.g. all zero, or a flat grey JPEG);
4. ``ok`` otherwise.

Only ``ok`` cutouts are fed to models.
"""

from __future__ import annotations

import numpy as np


def classify(data, shape: tuple[int, ...], coverage: float | None = None,
             min_coverage: float = 0.5) -> tuple[str, str]:
    """Return ``(status, reason)`` for one cutout.

    Parameters
    ----------
    data : array-like or None
        The cutout, expected shape ``shape``.
    shape : tuple of int
        Expected shape, e.g. ``(128, 128, 3)``.
    coverage : float, optional
        Fraction of pixels with data, if known (synthetic provider); else estimated as
        the fraction of pixels that are not exactly zero in every channel (FITS cubes) .
    min_coverage : float
        Below this coverage the cutout is ``off_footprint``.
    """
    if data is None:
        return "missing", "no data returned"
    try:
        arr = np.asarray(data)
    except Exception as exc:  # pragma: no cover - exotic objects
        return "corrupt", f"not an array: {exc}"
    if arr.shape != tuple(shape):
        return "corrupt", f"wrong shape {arr.shape}, expected {tuple(shape)}"
    if arr.dtype.kind not in "uif":
        return "corrupt", f"non-numeric dtype {arr.dtype}"
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            return "corrupt", f"{int(bad.sum())} non-finite pixels"
    if coverage is None and arr.dtype.kind == "f":
        coverage = float(np.any(arr != 0, axis=-1).mean())
    if coverage is not None and coverage < min_coverage:
        return "off_footprint", f"data over {coverage:.0%} of the stamp (< {min_coverage:.0%})"
    if arr.size == 0 or np.ptp(arr) == 0:
        return "blank", "constant image (no signal)"
    return "ok", ""
