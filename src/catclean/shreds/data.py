"""Labeled training cutouts for the shred CNN.

Two sources:

1. :func:`synthetic_training_set` -- a *training sky* of its own: ``n_hosts`` low-redshift
   NSA-like hosts (:func:`catclean.sky.hosts.synthetic_hosts`, own seed and sky box),
   each rendered and catalogued as a Legacy field (:func:`catclean.sky.fields.host_field`,
   so shreds come out of the deblender the way they do in the real catalog), and a
   128 x 128 RGB cutout (0.469"/pix, viewer colours) around every detection whose truth
   label is ``galaxy`` or ``shred`` and whose r-band magnitude is below ``r_max``.
   The sample is then balanced to ``galaxy_fraction`` galaxies (paper 001 Sec. 2.1:
   about 60% galaxies, 40% shreds).
2. :func:`load_labeled_images` -- the user's own labeled cutouts: a CSV with
   ``source_id,label`` (``galaxy``/``shred`` or 0/1) and one image per source in the
   Legacy viewer format (PNG or JPEG, 128 x 128 RGB, 60" across) named
   ``<source_id>.png`` / ``.jpg`` / ``.jpeg`` in an image directory.

Both return ``(images uint8 (N, 128, 128, 3), labels int8 (N,), meta DataFrame)``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

LABELS = {"galaxy": 0, "shred": 1}


def lanczos3_sample(image: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Lanczos-3 interpolation of ``image`` at pixel positions (``fx``, ``fy``), 0 outside.

    The viewer resamples the native 0.262" coadd to the cutout's pixel scale with a
    Lanczos-3 kernel (astrometry.net ``resample_with_wcs``): no flux averaging, so the
    pixel noise of a 0.469" stamp stays nearly white and close to the native sigma,
    unlike the flux-conserving box resampling of :meth:`FieldCutter.rgb`.
    """
    ny, nx = image.shape
    x0, y0 = np.floor(fx).astype(int), np.floor(fy).astype(int)
    out = np.zeros(fx.shape, np.float64)
    wsum = np.zeros(fx.shape, np.float64)
    for dy in range(-2, 4):
        iy = y0 + dy
        wy = np.sinc(fy - iy) * np.sinc((fy - iy) / 3.0)
        for dx in range(-2, 4):
            ix = x0 + dx
            w = wy * np.sinc(fx - ix) * np.sinc((fx - ix) / 3.0)
            ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
            out += np.where(ok, w * image[np.clip(iy, 0, ny - 1), np.clip(ix, 0, nx - 1)], 0.0)
            wsum += w
    return (out / np.where(wsum == 0, 1.0, wsum)).astype(np.float32)


def _viewer_rgb(cutter, ra: float, dec: float, size: int, pixscale: float, opts: dict,
                rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A stamp like :meth:`FieldCutter.rgb` plus the viewer's white pixel noise
    (``cutout_noise`` x the native sky sigma per band), the field's residual sky level
    ``sky_level`` (band -> native sky sigma) and a JPEG round trip; ``resample`` =
    ``"lanczos3"`` samples the native images as the viewer does (:func:`lanczos3_sample`)
    instead of the box-smoothed ones."""
    from scipy import ndimage

    from ..cutouts.rgb import jpeg_roundtrip, legacy_rgb, to_uint8
    from ..sky.surveys import SURVEYS

    spec = SURVEYS[cutter.field.survey] if cutter.field.survey in SURVEYS else SURVEYS["legacy"]
    imgs = cutter._smooth(pixscale) if opts.get("resample") != "lanczos3" else [None] * 3
    fx, fy = cutter._pix(ra, dec, size, pixscale)
    coords = np.array([fy, fx])
    bands = []
    for im, b in zip(imgs, ("g", "r", "z")):
        if opts.get("resample") == "lanczos3":
            s = lanczos3_sample(cutter.field.images[b], fx, fy)
        else:
            s = ndimage.map_coordinates(im, coords, order=1, mode="constant", cval=0.0)
        k = float(opts.get("cutout_noise", 0.0))
        if k > 0:
            s = s + rng.normal(0.0, k * spec.sky_sigma(b), s.shape).astype(np.float32)
        if b in opts.get("sky_level", {}):
            s = s + np.float32(opts["sky_level"][b] * spec.sky_sigma(b))
        bands.append(s)
    cover = ndimage.map_coordinates(cutter.good, coords, order=0, mode="constant", cval=0.0)
    rgb = np.ascontiguousarray(to_uint8(legacy_rgb(bands))[::-1])
    q = int(opts.get("jpeg_quality", 0) or 0)
    if q > 0:
        rgb = jpeg_roundtrip(rgb, q)
    return rgb, float(cover.mean())


#: the catalog cuts that define a shred candidate in the training sky: the paper's
#: photometric selection (Sec. 3.1), common to Legacy, SDSS and PS1. The Legacy model-fit
#: quality cuts (rchisq, fracflux, ...) are left out: the real eye-labelled cutouts are
#: SDSS sources, which have none, and the synthetic Tractor-like fit of large structured
#: hosts fails rchisq, which dropped 17 of 24 host centres (docs/realism.md, realism3).
CANDIDATE_CUTS = ("r_max", "surface_brightness", "color", "galaxy_type", "has_size")


def _passes_candidate_cuts(cat: pd.DataFrame) -> np.ndarray:
    """Which rows of a synthetic Legacy field catalog pass :data:`CANDIDATE_CUTS` (with the
    schema's ``cuts`` defaults), i.e. the candidates the pipeline would score."""
    from ..catalogs.normalize import normalize
    from ..config import default_config
    from ..cuts.cuts import CUTS

    common = normalize(cat.reset_index(drop=True), "legacy", "dr9", 1)
    params = default_config()["cuts"]
    keep = np.ones(len(cat), dtype=bool)
    for cut in CUTS:
        if cut.name in CANDIDATE_CUTS:
            keep &= np.asarray(cut(common, params, "legacy"), dtype=bool)
    return keep


def _field_stamps(args) -> tuple[np.ndarray, pd.DataFrame]:
    """Worker: render one training host field and cut stamps of its labeled detections."""
    hosts, nsaid, seed, radius_kpc, cosmology, sky, r_max, size, pixscale, min_cov = args
    from ..cutouts.quality import classify
    from ..cutouts.synthetic import FieldCutter
    from ..sky.fields import host_field
    from ..sky.render import realism_options

    opts = realism_options(sky.get("realism"))
    if "r_max" in opts:
        r_max = min(r_max, float(opts["r_max"]))
    fld, cat = host_field(hosts, int(nsaid), "legacy", seed, radius_kpc, cosmology, sky)
    flux = cat["flux_r"].to_numpy(float)
    mag = np.where(flux > 0, 22.5 - 2.5 * np.log10(np.maximum(flux, 1e-12)), np.inf)
    sel = cat["truth_label"].isin(list(LABELS)).to_numpy() & (mag <= r_max)
    if opts.get("candidate_cuts"):
        sel &= _passes_candidate_cuts(cat)
    cutter = FieldCutter(fld)
    if opts.get("sky_offset"):  # residual sky level of this field, per band (native sigma)
        srng = np.random.default_rng([seed, 97, int(nsaid)])
        mean = opts.get("sky_offset_mean") or {}
        opts["sky_level"] = {b: float(srng.normal(float(mean.get(b, 0.0)),
                                                  float(opts["sky_offset"].get(b, 0.0))))
                             for b in ("g", "r", "z")}
    imgs, rows = [], []
    for i in np.flatnonzero(sel):
        if opts:
            rgb, cover = _viewer_rgb(cutter, float(cat.ra.iloc[i]), float(cat.dec.iloc[i]),
                                     size, pixscale, opts,
                                     np.random.default_rng([seed, 99, int(nsaid), int(i)]))
        else:
            rgb, cover = cutter.rgb(float(cat.ra.iloc[i]), float(cat.dec.iloc[i]), size,
                                    pixscale)
        status, _ = classify(rgb, (size, size, 3), cover, min_cov)
        if status != "ok":
            continue
        imgs.append(rgb)
        rows.append({"source_id": f"train:{int(nsaid)}:{int(cat.objid.iloc[i])}"
                     if "objid" in cat else f"train:{int(nsaid)}:{i}",
                     "host_nsaid": int(nsaid), "truth_label": str(cat.truth_label.iloc[i]),
                     "truth_kind": str(cat.truth_kind.iloc[i]), "mag_r": float(mag[i]),
                     "ra": float(cat.ra.iloc[i]), "dec": float(cat.dec.iloc[i])})
    arr = np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)
    return arr, pd.DataFrame(rows)


def balance(labels: np.ndarray, galaxy_fraction: float, rng: np.random.Generator
            ) -> np.ndarray:
    """Indices of a random subsample with ``galaxy_fraction`` label-0 entries (or as close
    as the rarer class allows); order preserved."""
    g, s = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if len(g) == 0 or len(s) == 0:
        return np.arange(len(labels))
    ratio = galaxy_fraction / (1 - galaxy_fraction)
    if len(g) > ratio * len(s):
        g = rng.choice(g, int(round(ratio * len(s))), replace=False)
    else:
        s = rng.choice(s, min(len(s), int(round(len(g) / ratio))), replace=False)
    return np.sort(np.concatenate([g, s]))


def training_hosts(n_hosts: int, seed: int, z_range=(0.005, 0.02),
                   log_mass_range=(10.2, 11.2), ra_range=(200.0, 240.0),
                   dec_range=(5.0, 35.0), realism=None,
                   cosmology: dict | None = None) -> pd.DataFrame:
    """The host table of a training sky (:func:`synthetic_training_set`).

    A realism preset's ``host_z_range``, ``host_log_mass_range`` and ``host_z_weighting``
    replace ``z_range``, ``log_mass_range`` and the volume weighting: the realistic sky
    draws its hosts like the real candidates' NSA hosts (smaller and farther than the
    classic sky's large discs; docs/realism.md, realism4). Without the
    preset's ``all_hosts``, only star-forming discs are kept: the shreds the CNN must
    learn are star-forming regions split off discs (paper 001 Sec. 1, 2.1); the realistic
    sky keeps the early types (real shreds include outskirts of ellipticals).

    Parameters
    ----------
    n_hosts : int
        Hosts wanted; 3 x ``n_hosts`` are drawn, so that enough star-forming discs remain.
    seed : int
        Seed of the training sky.
    z_range, log_mass_range : (float, float)
        Redshift and log stellar mass (dex, M_sun) ranges without a realism preset.
    ra_range, dec_range : (float, float)
        Sky box of the hosts, deg.
    realism : str, dict or None
        ``sky.realism`` of the training fields (:func:`catclean.sky.render.realism_options`).
    cosmology : dict, optional
        ``cosmology`` config section.

    Returns
    -------
    DataFrame
        At most ``n_hosts`` rows of :func:`catclean.sky.hosts.synthetic_hosts` (``Z``
        redshift, ``NSAID``, ...), in draw order.
    """
    from ..sky.hosts import make_cosmology, synthetic_hosts
    from ..sky.render import realism_options

    ropt = realism_options(realism)
    hosts = synthetic_hosts(3 * n_hosts, ra_range, dec_range,
                            tuple(ropt.get("host_z_range", z_range)),
                            tuple(ropt.get("host_log_mass_range", log_mass_range)), seed,
                            cosmology=make_cosmology(cosmology),
                            z_weighting=ropt.get("host_z_weighting", "volume"))
    if not ropt.get("all_hosts"):
        hosts = hosts[hosts.sim_knot_frac > 0]
    return hosts.head(n_hosts).reset_index(drop=True)


def synthetic_training_set(n_hosts: int, seed: int, z_range=(0.005, 0.02),
                           log_mass_range=(10.2, 11.2), ra_range=(200.0, 240.0),
                           dec_range=(5.0, 35.0), sky: dict | None = None,
                           radius_kpc: float = 100.0, cosmology: dict | None = None,
                           r_max: float = 21.5, galaxy_fraction: float = 0.6,
                           size: int = 128, pixscale: float = 0.469,
                           min_coverage: float = 0.9, workers: int = 1,
                           progress=None, host_slice: slice | None = None) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Render a training sky and cut labeled RGB stamps (see module docstring).

    Parameters
    ----------
    n_hosts : int
        Number of synthetic host fields.
    seed : int
        Seed of the training sky (hosts, scenes, noise, balancing); keep it different
        from the science run's seed.
    z_range, log_mass_range, ra_range, dec_range
        Host draw (:func:`catclean.sky.hosts.synthetic_hosts`); low redshifts give large
        discs with resolved knots, i.e. shreds. A realism preset's ``host_z_range`` and
        ``host_log_mass_range`` replace ``z_range`` and ``log_mass_range``.
    sky : dict
        ``sky`` config section for the fields (``field_max_pix`` keeps them small).
        ``sky["realism"]`` (a :data:`catclean.sky.render.REALISM_PRESETS` name such as
        ``"viewer"``, or a dict of options) renders the realistic training sky of
        docs/realism.md: realistic host morphologies, PSF wings, no bad columns, viewer
        pixel noise and JPEG stamps, the real candidates' hosts and selection, early-type
        hosts kept. Absent or None: the original training sky, unchanged.
    r_max : float
        Faintest r magnitude (observed Kron flux) kept.
    galaxy_fraction : float or None
        Fraction of galaxies after balancing (paper: ~0.6); None keeps all.
    workers : int
        Processes rendering fields in parallel.
    host_slice : slice, optional
        Render only these hosts of the drawn table (chunked, resumable builds).
    """
    hosts = training_hosts(n_hosts, seed, z_range, log_mass_range, ra_range, dec_range,
                           (sky or {}).get("realism"), cosmology)
    args = [(hosts, nsaid, seed, radius_kpc, cosmology, sky or {}, r_max, size, pixscale,
             min_coverage) for nsaid in hosts.NSAID[host_slice or slice(None)]]
    parts = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for res in pool.map(_field_stamps, args):
                parts.append(res)
                if progress:
                    progress(1)
    else:
        for a in args:
            parts.append(_field_stamps(a))
            if progress:
                progress(1)
    images = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, size, size, 3))
    meta = pd.concat([p[1] for p in parts], ignore_index=True)
    labels = meta["truth_label"].map(LABELS).to_numpy(np.int8)
    log.info("training sky: %d hosts, %d labeled stamps (%d shreds) before balancing",
             n_hosts, len(labels), int(labels.sum()))
    if galaxy_fraction is None:
        return images, labels, meta
    keep = balance(labels, galaxy_fraction, np.random.default_rng([seed, 77]))
    return images[keep], labels[keep], meta.iloc[keep].reset_index(drop=True)


class ImageReadError(OSError):
    """An image file cannot be read (truncated, not an image); the message names it."""


def read_rgb_image(path, size: int = 128) -> np.ndarray:
    """Read a PNG/JPEG cutout as uint8 (size, size, 3); other sizes are resized (area).

    Raises
    ------
    ImageReadError
        Naming the file, when it is missing, truncated or not an image (PIL's own
        ``OSError: image file is truncated`` names no file).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BOX)
            return np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise ImageReadError(f"cannot read image {path}: {type(exc).__name__}: {exc}"
                             ) from None


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG")


def labeled_image_path(image_dir, source_id: str, csv_path, row: int) -> Path | None:
    """The image of one CSV row, resolved, or None when there is none.

    Raises
    ------
    ValueError
        Naming the CSV file, row and ``source_id`` when the resolved path (after ``..``
        and symbolic links) leaves ``image_dir``, e.g. ``source_id: ../x``.
    """
    root = Path(image_dir).resolve()
    for ext in IMAGE_EXTENSIONS:
        p = (root / f"{source_id}{ext}").resolve()
        if not p.is_relative_to(root):
            raise ValueError(f"{csv_path} row {row} (source_id {source_id!r}): image path "
                             f"{p} is outside the image directory {root}")
        if p.exists():
            return p
    return None


def load_labeled_images(csv_path, image_dir, size: int = 128
                        ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Load the user's labeled cutouts (CSV ``source_id,label`` + PNG/JPEG images).

    Each image path is resolved and must stay inside ``image_dir``. An image that
    exists but cannot be read (truncated, not an image) is skipped with a reason, logged
    and listed in ``meta.attrs["skipped"]`` (``row``, ``source_id``, ``reason``); the
    other images load.

    Returns
    -------
    images : uint8 (n, size, size, 3), labels : int8 (n,), meta : pandas.DataFrame
        The rows whose image loaded, in CSV order.

    Raises
    ------
    ValueError
        Naming the rows with unknown labels, missing images or a path outside the image
        directory, or when no image at all could be read.
    """
    table = pd.read_csv(csv_path, dtype={"source_id": str})
    if not {"source_id", "label"} <= set(table.columns):
        raise ValueError(f"{csv_path}: needs columns source_id,label; has {list(table.columns)}")
    lab = table["label"].astype(str).str.strip().str.lower().map(
        {"galaxy": 0, "shred": 1, "0": 0, "1": 1})
    if lab.isna().any():
        bad = table.loc[lab.isna(), "source_id"].tolist()[:5]
        raise ValueError(f"{csv_path}: labels must be galaxy/shred or 0/1 (bad rows: {bad})")
    image_dir = Path(image_dir)
    images, keep, missing, skipped = [], [], [], []
    for i, sid in enumerate(table["source_id"].astype(str)):
        p = labeled_image_path(image_dir, sid, csv_path, i + 2)  # row 1 is the header
        if p is None:
            missing.append(sid)
            continue
        try:
            images.append(read_rgb_image(p, size))
        except ImageReadError as exc:
            log.warning("%s row %d: skipped: %s", csv_path, i + 2, exc)
            skipped.append({"row": i + 2, "source_id": sid, "reason": str(exc)})
            continue
        keep.append(i)
    if missing:
        raise ValueError(f"{len(missing)} labeled sources have no image in {image_dir} "
                         f"(e.g. {missing[:3]}); expected <source_id>.png or .jpg")
    if not images:
        raise ValueError(f"{csv_path}: no labeled image could be read "
                         f"(e.g. {skipped[0]['reason'] if skipped else 'none listed'})")
    meta = table.assign(truth_label=np.where(lab.to_numpy() == 1, "shred", "galaxy"))
    meta = meta.iloc[keep].reset_index(drop=True)
    meta.attrs["skipped"] = pd.DataFrame(skipped, columns=["row", "source_id", "reason"])
    return np.stack(images), lab.to_numpy(np.int8)[keep], meta
