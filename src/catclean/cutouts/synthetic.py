"""Cutouts from the synthetic sky: resample a rendered Legacy field around sources.

Two products per source, the formats of the Legacy viewer's cutout service:

- **RGB**: 128 x 128 pixels at 0.469"/pix (60" across), north up, east left, the
  viewer's grz colour mapping (:func:`catclean.cutouts.rgb.legacy_rgb`), uint8 -- the
  format the published shred CNN was trained on (paper 001 Sec. 2.1; papers/README.md).
  Resampling is flux (surface-brightness) conserving: each band is first averaged over
  the footprint of an output pixel (a box of ``0.469 / 0.262 = 1.79`` native pixels,
  separable, fractional edge weights), then sampled bilinearly
  (:func:`scipy.ndimage.map_coordinates`) at the output pixel centres through the two
  TAN WCS. Values stay in nanomaggies per native pixel, as in the viewer's binned tiles.
- **grz cube**: ``size x size`` (default 64) at the native 0.262"/pix, float32
  nanomaggies per pixel, cut with :class:`astropy.nddata.Cutout2D` (no resampling; the
  source lies within half a pixel of the centre), zero outside the field.

Each stamp also gets a *coverage*: the fraction of its pixels with data (``ivar > 0``
in every band, inside the rendered field), used to flag ``off_footprint`` stamps.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..sky.render import Field, field_wcs
from .rgb import legacy_rgb, to_uint8

LEGACY_PIXSCALE = 0.262
BANDS = ("g", "r", "z")


def box_weights(width: float) -> np.ndarray:
    """1-D weights of a box of ``width`` native pixels centred on a pixel (sum 1)."""
    if width <= 1.0:
        return np.array([1.0])
    half = width / 2.0
    n = int(np.ceil(half - 0.5))
    w = np.ones(2 * n + 1)
    edge = half - (n - 0.5)
    w[0] = w[-1] = edge
    return w / w.sum()


class FieldCutter:
    """Cut RGB stamps and grz flux cubes out of one rendered (Legacy) field.

    Parameters
    ----------
    field : catclean.sky.render.Field
        Images in nanomaggies with a TAN ``wcs`` and ``ivar``.
    """

    def __init__(self, field: Field):
        self.field = field
        self.wcs = field.wcs
        cd = getattr(self.wcs.wcs, "cd", None)
        if cd is not None and np.any(cd):
            self.pixscale = float(abs(cd[0, 0]) * 3600.0)
        else:
            self.pixscale = float(abs(self.wcs.wcs.cdelt[0]) * 3600.0)
        good = np.ones(field.shape, dtype=bool)
        for b in BANDS:
            good &= field.ivar[b] > 0
        self.good = good.astype(np.float32)
        self._smoothed: dict[float, list[np.ndarray]] = {}

    def _smooth(self, out_pixscale: float) -> list[np.ndarray]:
        key = round(out_pixscale, 6)
        if key not in self._smoothed:
            w = box_weights(out_pixscale / self.pixscale)
            imgs = []
            for b in BANDS:
                im = self.field.images[b].astype(np.float32)
                if len(w) > 1:
                    im = ndimage.convolve1d(im, w, axis=0, mode="constant")
                    im = ndimage.convolve1d(im, w, axis=1, mode="constant")
                imgs.append(im)
            self._smoothed = {key: imgs}  # keep one scale in memory
        return self._smoothed[key]

    def _pix(self, ra: float, dec: float, size: int, pixscale: float):
        """Field pixel coordinates of every stamp pixel centre.

        The stamp -> field map is affine to < 1e-4 pixel over a 60" stamp (two TAN
        projections with nearby tangent points), so it is evaluated exactly at the
        stamp centre and along the two stamp axes and applied as a matrix (much faster
        than a full WCS transform of every pixel).
        """
        sw = field_wcs(ra, dec, size, pixscale)
        c = (size - 1) / 2.0
        h = size / 4.0
        wra, wdec = sw.all_pix2world([c, c + h, c], [c, c, c + h], 0)
        fx, fy = self.wcs.all_world2pix(wra, wdec, 0)
        jx = np.array([fx[1] - fx[0], fy[1] - fy[0]]) / h
        jy = np.array([fx[2] - fx[0], fy[2] - fy[0]]) / h
        yy, xx = np.mgrid[0:size, 0:size] - c
        return (fx[0] + jx[0] * xx + jy[0] * yy, fy[0] + jx[1] * xx + jy[1] * yy)

    def rgb(self, ra: float, dec: float, size: int = 128, pixscale: float = 0.469
            ) -> tuple[np.ndarray, float]:
        """RGB stamp (uint8, (size, size, 3)) and its data coverage fraction."""
        imgs = self._smooth(pixscale)
        fx, fy = self._pix(ra, dec, size, pixscale)
        coords = np.array([fy, fx])
        bands = [ndimage.map_coordinates(im, coords, order=1, mode="constant", cval=0.0)
                 for im in imgs]
        cover = ndimage.map_coordinates(self.good, coords, order=0, mode="constant", cval=0.0)
        # FITS/array row 0 is south; image formats put north at the top: flip rows
        rgb = to_uint8(legacy_rgb(bands))[::-1]
        return np.ascontiguousarray(rgb), float(cover.mean())

    def cube(self, ra: float, dec: float, size: int = 64) -> tuple[np.ndarray, float]:
        """grz flux cube (float32, (size, size, 3), nanomaggies/pixel) and its coverage.

        Rows run south to north as in the viewer's ``cutout.fits`` (FITS order).
        """
        from astropy.nddata import Cutout2D
        from astropy.nddata.utils import NoOverlapError

        out = np.zeros((size, size, 3), dtype=np.float32)
        pos = self.wcs.all_world2pix([[ra, dec]], 0)[0]
        try:
            cover = Cutout2D(self.good, pos, (size, size), mode="partial", fill_value=0.0)
        except NoOverlapError:
            return out, 0.0
        for k, b in enumerate(BANDS):
            c = Cutout2D(self.field.images[b], pos, (size, size), mode="partial",
                         fill_value=0.0, copy=True)
            out[..., k] = c.data
        return out, float(np.asarray(cover.data).mean())
