"""The WCS of a rendered field (astropy only, so rules that just place sources on a field,
such as ``morphology_columns``, do not need GalSim)."""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS


def field_wcs(ra: float, dec: float, npix: int, pixscale: float) -> WCS:
    """TAN WCS of a square field, north up, east left."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(npix + 1) / 2.0, (npix + 1) / 2.0]
    w.wcs.cd = np.array([[-pixscale / 3600.0, 0.0], [0.0, pixscale / 3600.0]])
    return w
