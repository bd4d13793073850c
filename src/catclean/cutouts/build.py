"""Build the cutout stores of one catalog partition (rule ``cutouts``).

For every source of the partition (every row of the cut table, whether it passes the
cuts or not: nothing is dropped) two stores are written (:func:`.store.write_store`):

- ``rgb``: uint8 (128, 128, 3), 0.469"/pix, Legacy viewer colours (shred CNN input);
- ``grz``: float32 (S, S, 3), 0.262"/pix, nanomaggies, channels g, r, z (blends stage).

Providers
---------
:class:`SyntheticCutouts`
    Resamples the rendered *Legacy* field of the source's field host (``field_nsaid``);
    SDSS and PS1 sources use the Legacy field of the same host, because the cutout
    imaging is always Legacy (paper 001 Sec. 3.1-3.2).
:class:`LiveCutouts`
    Fetches from the Legacy viewer through
    :class:`catclean.catalogs.services.legacy_viewer.LegacyCutoutClient` (``fetch_jpeg``
    / ``fetch_fits``). Its :class:`catclean.net.Fetcher` is the one HTTP layer: its
    bounded pool (``services.legacy_viewer.concurrency``) runs the requests and its
    on-disk cache (``services.cache_dir``, raw answers checked by sha256) lets a killed
    run resume without refetching what it already has.

A failed fetch, a blank, off-footprint or corrupt cutout becomes a flagged row
(``cutout_status`` + ``reason``) with a zero placeholder; it never stops the job.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .quality import classify
from .store import write_store

log = logging.getLogger(__name__)


#: the ``cutouts`` config keys that define the products
SPEC_KEYS = ("rgb_size", "rgb_pixscale", "grz_size", "grz_pixscale", "min_coverage")


@dataclass
class CutoutSpec:
    """Formats of the two products (see module docstring; ``cutouts`` in the schema)."""

    rgb_size: int
    rgb_pixscale: float
    grz_size: int
    grz_pixscale: float
    min_coverage: float

    @classmethod
    def from_config(cls, cfg: dict) -> CutoutSpec:
        """From the resolved ``cutouts`` section (or any dict with :data:`SPEC_KEYS`)."""
        return cls(rgb_size=int(cfg["rgb_size"]), rgb_pixscale=float(cfg["rgb_pixscale"]),
                   grz_size=int(cfg["grz_size"]), grz_pixscale=float(cfg["grz_pixscale"]),
                   min_coverage=float(cfg["min_coverage"]))


@dataclass
class Fetched:
    """One source's raw products before quality classification."""

    rgb: np.ndarray | None = None
    rgb_cover: float | None = None
    grz: np.ndarray | None = None
    grz_cover: float | None = None
    error: str = ""
    status: dict | None = None  # kind -> cutout_status reported by the client


class SyntheticCutouts:
    """Cutouts resampled from rendered Legacy fields.

    Parameters
    ----------
    field_paths : dict
        ``field_nsaid -> path`` of the Legacy field FITS (``render_field`` output).
    spec : CutoutSpec
    """

    name = "synthetic"

    def __init__(self, field_paths: dict, spec: CutoutSpec):
        self.field_paths = {int(k): Path(v) for k, v in field_paths.items()}
        self.spec = spec

    def fetch_all(self, table: pd.DataFrame, progress: Callable | None = None
                  ) -> list[Fetched]:
        from ..sky.render import read_field_fits
        from .synthetic import FieldCutter

        out = [Fetched(error="no Legacy field for this source") for _ in range(len(table))]
        fn = table["field_nsaid"] if "field_nsaid" in table else pd.Series(np.nan, table.index)
        fn = pd.to_numeric(fn, errors="coerce").to_numpy(dtype="float64")
        ra, dec = table["ra"].to_numpy(float), table["dec"].to_numpy(float)
        done = 0
        for nsaid in pd.unique(fn[np.isfinite(fn)]):
            rows = np.flatnonzero(fn == nsaid)
            path = self.field_paths.get(int(nsaid))
            if path is None or not path.exists():
                for i in rows:
                    out[i] = Fetched(error=f"Legacy field of host {int(nsaid)} not available")
                continue
            try:
                cutter = FieldCutter(read_field_fits(path))
            except Exception as exc:  # unreadable field: flag its sources, keep going
                for i in rows:
                    out[i] = Fetched(error=f"cannot read field {path.name}: {exc}")
                continue
            s = self.spec
            for i in rows:
                try:
                    rgb, rc = cutter.rgb(ra[i], dec[i], s.rgb_size, s.rgb_pixscale)
                    grz, gc = cutter.cube(ra[i], dec[i], s.grz_size)
                    out[i] = Fetched(rgb, rc, grz, gc)
                except Exception as exc:
                    out[i] = Fetched(error=f"cutout failed: {exc}")
            done += len(rows)
            if progress:
                progress(len(rows))
        return out


class LiveCutouts:
    """Cutouts from the Legacy viewer, through the client's fetcher (cache and pool).

    Parameters
    ----------
    client : LegacyCutoutClient or object
        Anything with ``fetch_jpeg(ra, dec, size, pixscale) -> uint8 (H, W, 3)``,
        ``fetch_fits(ra, dec, size, pixscale) -> (float32 (3, H, W), header)`` and a
        ``fetcher`` (:class:`catclean.net.Fetcher`: its ``map`` runs the sources on the
        service's bounded pool, its cache makes a rerun resume).
    spec : CutoutSpec
    """

    name = "live"

    def __init__(self, client, spec: CutoutSpec):
        self.client = client
        self.spec = spec

    def _get(self, kind: str, ra: float, dec: float):
        s = self.spec
        if kind == "rgb":
            return np.asarray(self.client.fetch_jpeg(ra, dec, s.rgb_size, s.rgb_pixscale))
        cube, _hdr = self.client.fetch_fits(ra, dec, s.grz_size, s.grz_pixscale)
        return np.moveaxis(np.asarray(cube, dtype=np.float32), 0, -1)  # (H, W, 3)

    def _one(self, pos: tuple[float, float]) -> Fetched:
        ra, dec = pos
        f = Fetched()
        errs = []
        for kind in ("rgb", "grz"):
            try:
                arr = self._get(kind, ra, dec)
            except Exception as exc:  # network / service failure: flag, never stop
                errs.append(f"{kind}: {type(exc).__name__}: {exc}")
                st = getattr(exc, "status", None)  # the client's CutoutUnavailable
                if st in ("blank", "off_footprint", "corrupt"):
                    f.status = dict(f.status or {}, **{kind: st})
                continue
            if kind == "rgb":
                f.rgb = arr
            else:
                f.grz = arr
        f.error = "; ".join(errs)
        return f

    def fetch_all(self, table: pd.DataFrame, progress: Callable | None = None
                  ) -> list[Fetched]:
        pos = zip(table["ra"].to_numpy(float), table["dec"].to_numpy(float))
        out: list[Fetched] = []
        for f in self.client.fetcher.map(self._one, pos):
            out.append(f)
            if progress:
                progress(1)
        stats = self.client.fetcher.stats
        log.info("live cutouts: %d fetched, %d from cache", stats["fetched"],
                 stats["from_cache"])
        return out


def _alloc(n: int, shape: tuple, dtype, tmpdir: Path) -> np.ndarray:
    """Zero array, memory-mapped on disk when large (keeps big partitions out of RAM)."""
    nbytes = n * int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes < 512 * 2**20:
        return np.zeros((n, *shape), dtype=dtype)
    tmpdir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmpdir, suffix=".npy")
    os.close(fd)
    return np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(n, *shape))


def build_partition(table: pd.DataFrame, provider, spec: CutoutSpec, rgb_out, grz_out,
                    meta: dict | None = None, progress: Callable | None = None) -> pd.DataFrame:
    """Fetch / render every source of ``table`` and write the ``rgb`` and ``grz`` stores.

    Parameters
    ----------
    table : pandas.DataFrame
        Partition catalog with ``source_id``, ``ra``, ``dec`` (and ``field_nsaid`` for
        the synthetic provider).
    provider : SyntheticCutouts or LiveCutouts
    spec : CutoutSpec
    rgb_out, grz_out : path-like
        Store directories.
    meta : dict, optional
        Extra store metadata (survey, release, provider...).

    Returns
    -------
    pandas.DataFrame
        ``source_id, rgb_status, rgb_reason, grz_status, grz_reason`` (one row per source).
    """
    n = len(table)
    fetched = provider.fetch_all(table, progress=progress)
    rgb_shape = (spec.rgb_size, spec.rgb_size, 3)
    grz_shape = (spec.grz_size, spec.grz_size, 3)
    tmpdir = Path(rgb_out).parent / ".tmp_cutouts"
    rgb = _alloc(n, rgb_shape, np.uint8, tmpdir)
    grz = _alloc(n, grz_shape, np.float32, tmpdir)
    st = {"rgb": [], "grz": []}
    why = {"rgb": [], "grz": []}
    for i, f in enumerate(fetched):
        for kind, data, cover, shape, arr in (("rgb", f.rgb, f.rgb_cover, rgb_shape, rgb),
                                              ("grz", f.grz, f.grz_cover, grz_shape, grz)):
            if data is None:
                s = (f.status or {}).get(kind, "missing")
                r = f.error or "not fetched"
            else:
                s, r = classify(data, shape, cover, spec.min_coverage)
            if s == "ok":
                arr[i] = data
            st[kind].append(s)
            why[kind].append(r)
    ids = table["source_id"].astype(str).tolist()
    base = dict(meta or {}, provider=provider.name)
    write_store(rgb_out, ids, rgb, st["rgb"], why["rgb"],
                meta=dict(base, kind="rgb", bands="grz", pixscale=spec.rgb_pixscale,
                          units="uint8 Legacy viewer RGB (R=z, G=r, B=g)",
                          rgb_mapping="legacy_rgb (sdss_rgb, dr2 scales)"))
    write_store(grz_out, ids, grz, st["grz"], why["grz"],
                meta=dict(base, kind="grz", bands="grz", pixscale=spec.grz_pixscale,
                          units="nanomaggy per pixel", channels=["g", "r", "z"]))
    tmp_files = [a.filename for a in (rgb, grz) if isinstance(a, np.memmap)]
    del rgb, grz
    for fname in tmp_files:
        Path(fname).unlink(missing_ok=True)
    if tmpdir.exists():
        try:
            tmpdir.rmdir()
        except OSError:
            pass
    return pd.DataFrame({"source_id": ids, "rgb_status": st["rgb"], "rgb_reason": why["rgb"],
                         "grz_status": st["grz"], "grz_reason": why["grz"]})


def field_paths_from_inputs(paths: Iterable[str]) -> dict:
    """``{nsaid: path}`` from ``.../{nsaid}.fits`` input paths."""
    out = {}
    for p in paths:
        p = Path(p)
        if p.suffix == ".fits" and p.stem.isdigit():
            out[int(p.stem)] = p
    return out
