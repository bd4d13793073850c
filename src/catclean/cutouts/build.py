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
    Fetches from the Legacy viewer through :mod:`catclean.cutouts.legacy_client`
    (``fetch_jpeg`` / ``fetch_fits``) with a bounded thread pool and an on-disk cache
    (one ``.npy`` per cutout, written atomically), so a killed run resumes without
    refetching what it already has.

A failed fetch, a blank, off-footprint or corrupt cutout becomes a flagged row
(``cutout_status`` + ``reason``) with a zero placeholder; it never stops the job.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .quality import classify
from .store import write_store

log = logging.getLogger(__name__)


@dataclass
class CutoutSpec:
    """Formats of the two products (see module docstring)."""

    rgb_size: int = 128
    rgb_pixscale: float = 0.469
    grz_size: int = 64
    grz_pixscale: float = 0.262
    min_coverage: float = 0.5

    @classmethod
    def from_config(cls, cfg: dict | None) -> CutoutSpec:
        cfg = cfg or {}
        return cls(rgb_size=int(cfg.get("rgb_size", 128)),
                   rgb_pixscale=float(cfg.get("rgb_pixscale", 0.469)),
                   grz_size=int(cfg.get("grz_size", 64)),
                   grz_pixscale=float(cfg.get("grz_pixscale", 0.262)),
                   min_coverage=float(cfg.get("min_coverage", 0.5)))


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


def _cache_key(ra: float, dec: float, size: int, pixscale: float, kind: str) -> str:
    txt = f"{kind}:{ra:.7f}:{dec:.7f}:{size}:{pixscale:.4f}"
    return hashlib.sha1(txt.encode()).hexdigest()[:20]


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class LiveCutouts:
    """Cutouts from the Legacy viewer, cached on disk, fetched by a bounded pool.

    Parameters
    ----------
    cache_dir : path-like
        Directory of the on-disk cache (``rgb/`` and ``grz/`` ``.npy`` files).
    spec : CutoutSpec
    workers : int
        Maximum concurrent requests.
    client : module or object, optional
        Anything with ``fetch_jpeg(ra, dec, size, pixscale) -> uint8 (H, W, 3)`` and
        ``fetch_fits(ra, dec, size, pixscale) -> (float32 (3, H, W), header)``; default
        :mod:`catclean.cutouts.legacy_client` (imported lazily).
    """

    name = "live"

    def __init__(self, cache_dir, spec: CutoutSpec, workers: int = 8, client=None):
        self.cache = Path(cache_dir)
        self.spec = spec
        self.workers = max(1, int(workers))
        self._client = client
        self.n_fetched = 0
        self.n_cached = 0

    @property
    def client(self):
        if self._client is None:
            from . import legacy_client  # the other developer's module; lazy on purpose

            self._client = legacy_client
        return self._client

    def _get(self, kind: str, ra: float, dec: float):
        s = self.spec
        size, pix = (s.rgb_size, s.rgb_pixscale) if kind == "rgb" else (s.grz_size,
                                                                         s.grz_pixscale)
        path = self.cache / kind / f"{_cache_key(ra, dec, size, pix, kind)}.npy"
        if path.exists():
            try:
                arr = np.load(path)
                self.n_cached += 1
                return arr
            except Exception:  # truncated cache file: refetch
                path.unlink(missing_ok=True)
        if kind == "rgb":
            arr = np.asarray(self.client.fetch_jpeg(ra, dec, size=size, pixscale=pix))
        else:
            cube, _hdr = self.client.fetch_fits(ra, dec, size, pix)
            arr = np.moveaxis(np.asarray(cube, dtype=np.float32), 0, -1)  # (H, W, 3)
        _atomic_save(path, arr)
        self.n_fetched += 1
        return arr

    def _one(self, ra: float, dec: float) -> Fetched:
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
        ra, dec = table["ra"].to_numpy(float), table["dec"].to_numpy(float)
        out: list[Fetched] = [Fetched()] * len(table)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(self._one, ra[i], dec[i]): i for i in range(len(table))}
            for fut, i in futures.items():
                out[i] = fut.result()
                if progress:
                    progress(1)
        log.info("live cutouts: %d fetched, %d from cache", self.n_fetched, self.n_cached)
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
