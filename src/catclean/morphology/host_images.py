"""Host images of a live run (rule ``fetch_host_images``): one Legacy viewer ``cutout.jpg``
per host, at the morphology stage's field size and pixel scale.

The request is ``cutout.jpg?ra=<RA>&dec=<DEC>&layer=ls-<release>&pixscale=<pixscale>&size=
<field_size>`` (default 256 px at 0.396127"/pix, the SDSS sampling of paper 003 Sec. 2.2),
made through :class:`~catclean.catalogs.services.legacy_viewer.LegacyCutoutClient` and so
through the one :class:`catclean.net.Fetcher` of the ``legacy_viewer`` service: retries with
backoff, the per-attempt deadline, the on-disk cache under ``services.cache_dir`` (a rerun
fetches nothing) and credential redaction, on the service's bounded pool.

Units and orientation, as the network was trained (:mod:`.simulate`): uint8 RGB, (H, W, 3),
row 0 at the top. The viewer's JPEG is north up, east left, centred on the requested
position at pixel ((size - 1) / 2, (size - 1) / 2) -- the convention of
:func:`~catclean.morphology.stage.host_pixels` (TAN, ``CD1_1 < 0``, image row = size - 1 -
WCS y) and of the synthetic host images (:meth:`FieldCutter.rgb`). The colours are the
viewer's grz mapping (R = z, G = r, B = g), the reddest band in R as in the gri training
fields (R = i, G = r, B = g): the same domain gap as the synthetic run's host images.

A host without a usable image is kept, flagged (:data:`IMAGE_REASONS`), with the error text
naming the request URL (credentials redacted, :func:`catclean.net.redact`); nothing raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..net import redact

log = logging.getLogger(__name__)

#: host ``morphology_reason`` when no image could be obtained: the viewer's answer status
#: (:func:`~catclean.catalogs.services.legacy_viewer.classify_rgb`) or the request's failure
IMAGE_REASONS = {
    "off_footprint": "image_off_footprint",   # all pixels 0: outside the survey
    "blank": "image_blank",                   # one constant colour
    "corrupt": "image_corrupt",               # not a JPEG, wrong shape
    "failed": "image_fetch_failed",           # HTTP error / timeout after retries
    "bad_position": "image_bad_position",     # non-finite or out-of-range RA / Dec
}


def _fetch_one(client, ra: float, dec: float, size: int, pixscale: float):
    """``(image or None, reason or "", error text naming the URL or "")`` of one host."""
    from ..catalogs.services.base import query_string

    try:
        url, params = client.jpeg_request(ra, dec, size, pixscale)
    except ValueError as exc:
        return None, IMAGE_REASONS["bad_position"], f"no request: {exc}"
    where = redact(query_string(url, params))
    try:
        r = client.try_fetch_jpeg(ra, dec, size, pixscale)
    except Exception as exc:  # ServiceError after retries (already redacted), anything else
        return None, IMAGE_REASONS["failed"], redact(f"{type(exc).__name__}: {exc} [{where}]")
    if r.status != "ok":
        return None, IMAGE_REASONS[r.status], f"{r.status}: {r.reason} [{where}]"
    return r.data, "", ""


def fetch_host_images(hosts: pd.DataFrame, client, size: int, pixscale: float,
                      progress: Callable | None = None) -> dict:
    """Fetch every host's JPEG.

    Parameters
    ----------
    hosts : DataFrame
        ``NSAID``, ``RA``, ``DEC`` (deg, ICRS).
    client : LegacyCutoutClient
        Or anything with ``jpeg_request``, ``try_fetch_jpeg`` and a ``fetcher`` whose
        ``map`` runs the hosts on the service's bounded pool.
    size : int
        Side (pixels), ``morphology.field_size``.
    pixscale : float
        arcsec / pixel, ``morphology.pixscale``.

    Returns
    -------
    dict
        ``nsaid`` (N,) int64, ``ra``, ``dec`` (deg), ``images`` (N, size, size, 3) uint8
        (zeros where missing), ``ok`` (N,) bool, ``reason`` and ``error`` (N,) str ("" when
        ok), ``size``, ``pixscale``.
    """
    n = len(hosts)
    out = {"nsaid": hosts["NSAID"].to_numpy(np.int64), "ra": hosts["RA"].to_numpy(float),
           "dec": hosts["DEC"].to_numpy(float),
           "images": np.zeros((n, size, size, 3), np.uint8), "ok": np.zeros(n, bool),
           "reason": np.full(n, "", dtype=object), "error": np.full(n, "", dtype=object),
           "size": int(size), "pixscale": float(pixscale)}

    def one(pos):
        return _fetch_one(client, pos[0], pos[1], size, pixscale)

    for i, (img, why, err) in enumerate(client.fetcher.map(one, zip(out["ra"], out["dec"]))):
        if img is not None:
            out["images"][i], out["ok"][i] = img, True
        out["reason"][i], out["error"][i] = why, err
        if err:
            log.warning("host %d: %s", out["nsaid"][i], err)
        if progress:
            progress(1)
    out["reason"], out["error"] = out["reason"].astype(str), out["error"].astype(str)
    stats = getattr(client.fetcher, "stats", {})
    log.info("host images: %d of %d ok (%d fetched, %d from cache); %s", int(out["ok"].sum()),
             n, stats.get("fetched", 0), stats.get("from_cache", 0),
             pd.Series(out["reason"][~out["ok"]]).value_counts().to_dict())
    return out


def write_host_images(images: dict, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **images)


def read_host_images(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def fetch(hosts_path, services: dict, release: str, *, size: int, pixscale: float,
          out_path, progress: Callable | None = None) -> dict:
    """Rule ``fetch_host_images``: every host of ``hosts_path`` from the Legacy viewer
    (``services``: the resolved ``services`` section; ``release``: the imaging survey's),
    written as an ``.npz`` (:func:`fetch_host_images`)."""
    from ..catalogs.services.legacy_viewer import LegacyCutoutClient

    hosts = pd.read_parquet(hosts_path, columns=["NSAID", "RA", "DEC"])
    got = fetch_host_images(hosts, LegacyCutoutClient(services, release), size, pixscale,
                            progress=progress)
    write_host_images(got, out_path)
    return got


def align(hosts: pd.DataFrame, got: dict, size: int):
    """Fetched images in the order of ``hosts``: ``(images, ok, reasons, errors)``; a host
    missing from ``got`` is ``no_host_image``, an image of another size ``bad_shape`` is
    left to the segmentation (it is passed on as it is)."""
    n = len(hosts)
    row = {int(v): i for i, v in enumerate(got["nsaid"])}
    shape = got["images"].shape[1:] if len(got["nsaid"]) else (size, size, 3)
    images = np.zeros((n, *shape), np.uint8)
    ok = np.zeros(n, bool)
    reasons = np.full(n, "no_host_image", dtype=object)
    errors = np.full(n, None, dtype=object)
    for i, nsaid in enumerate(hosts["NSAID"].astype(int)):
        j = row.get(int(nsaid))
        if j is None:
            continue
        images[i], ok[i] = got["images"][j], bool(got["ok"][j])
        if not ok[i]:
            reasons[i], errors[i] = str(got["reason"][j]), str(got["error"][j])
    return images, ok, reasons, errors
