"""The Legacy Surveys viewer's g, r, z -> RGB mapping.

The viewer (legacysurvey/imagine, ``map/views.py``) renders DR9 colour images with
``dr2_rgb``, which is ``sdss_rgb`` (an arcsinh "Lupton-style" stretch of the mean
intensity, applied to each band in proportion) with per-band scales
``g -> blue x 6.0``, ``r -> green x 3.4``, ``z -> red x 2.2``, an offset ``m = 0.03`` and
softening ``Q = 20``. Pixel values are in nanomaggies per native 0.262" pixel (the viewer
bins coadds 2x2 by averaging for coarser pixel scales, so surface brightness units are
kept). This module re-implements that mapping from its description so the synthetic
cutouts look like the JPEG/PNG cutouts the published shred CNN was trained on
(paper 001 Sec. 2.1); docs/cutouts.md compares pixel statistics with 856 real DR9
cutouts.
"""

from __future__ import annotations

import numpy as np

#: band -> (RGB plane, multiplier): g is blue, r green, z red (viewer's DR2+ scales)
LEGACY_RGB_SCALES = {"g": (2, 6.0), "r": (1, 3.4), "z": (0, 2.2)}
LEGACY_RGB_OFFSET = 0.03
LEGACY_RGB_Q = 20.0


def legacy_rgb(images, bands=("g", "r", "z"), scales: dict | None = None,
               m: float = LEGACY_RGB_OFFSET, Q: float = LEGACY_RGB_Q) -> np.ndarray:
    """Map band images to an RGB image in [0, 1] the way the Legacy viewer does.

    Parameters
    ----------
    images : sequence of ndarray (..., H, W)
        One image per band in nanomaggies per 0.262" pixel; leading axes (a batch) are
        allowed.
    bands : sequence of str
        Band of each image.
    scales : dict, optional
        Override of :data:`LEGACY_RGB_SCALES` (band -> (plane, multiplier)).
    m : float
        Offset added before the stretch (sky maps to dark grey, not black).
    Q : float
        Arcsinh softening.

    Returns
    -------
    ndarray (..., H, W, 3), float32 in [0, 1]
        Planes in R, G, B order.
    """
    sc = dict(LEGACY_RGB_SCALES)
    if scales:
        sc.update(scales)
    imgs = [np.asarray(im, dtype=np.float32) for im in images]
    intensity = np.zeros_like(imgs[0])
    for im, b in zip(imgs, bands):
        intensity = intensity + np.maximum(0.0, im * sc[b][1] + m)
    intensity = intensity / len(imgs)
    f_i = np.arcsinh(Q * intensity) / np.sqrt(Q)
    intensity = np.where(intensity == 0.0, 1e-6, intensity)
    rgb = np.zeros(imgs[0].shape + (3,), dtype=np.float32)
    for im, b in zip(imgs, bands):
        plane, mult = sc[b]
        rgb[..., plane] = (im * mult + m) * f_i / intensity
    return np.clip(rgb, 0.0, 1.0)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """[0, 1] float RGB -> uint8 the way PIL writes the viewer's JPEG/PNG (round, clip)."""
    return np.clip(np.round(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)


def rgb_statistics(images: np.ndarray) -> dict:
    """Pixel statistics of uint8 RGB cutouts (N, H, W, 3) used to compare with real ones.

    Returns the median over images of: the per-channel median (background level), the
    per-channel robust noise (1.4826 x MAD), the fraction of saturated (255) and black
    (0) pixels, and the mean per channel.
    """
    a = np.asarray(images, dtype=np.float32)
    flat = a.reshape(len(a), -1, 3)
    med = np.median(flat, axis=1)
    mad = 1.4826 * np.median(np.abs(flat - med[:, None, :]), axis=1)
    return {
        "n": int(len(a)),
        "background_rgb": np.median(med, axis=0).round(2).tolist(),
        "background_rgb_p10_p90": np.percentile(med, [10, 90], axis=0).round(1).tolist(),
        "noise_mad_rgb": np.median(mad, axis=0).round(2).tolist(),
        "mean_rgb": flat.mean(axis=(0, 1)).round(2).tolist(),
        "frac_255": float((a == 255).mean()),
        "frac_0": float((a == 0).mean()),
    }


def jpeg_roundtrip(rgb: np.ndarray, quality: int = 90, subsampling: int = 2) -> np.ndarray:
    """Encode uint8 RGB (H, W, 3) as JPEG and decode it again (PIL/libjpeg).

    The viewer serves its cutouts as JPEG; ``quality`` 90 with 4:2:0 chroma subsampling
    (``subsampling=2``, PIL's code) reproduces the chroma blur and the pixel-noise texture
    of the 856 real DR9 cutouts in ``shared/real`` (docs/realism.md).
    """
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="JPEG", quality=int(quality),
                                                         subsampling=subsampling)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
