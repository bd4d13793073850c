"""Sharded cutout stores: many cutouts per file, an index from ``source_id`` to shard row.

Layout of one store (a directory)::

    index.parquet        source_id, shard, row, cutout_status, reason  (one row per source)
    shard-00000.npy      array (n, H, W, C) -- uint8 RGB or float32 flux cubes
    shard-00001.npy      ...
    meta.json            kind, pixel scale, bands, units, shape, dtype

Shards are plain ``.npy`` so they can be memory-mapped (``np.load(mmap_mode='r')``); a
million cutouts are a few hundred files, not a million. A store is written to a
temporary directory and renamed into place, so a killed job never leaves a store that
looks complete but is not.

``cutout_status`` values (:data:`CUTOUT_STATUS`): ``ok``, ``blank`` (no signal: all zero or
constant), ``off_footprint`` (outside the survey / field), ``corrupt`` (unreadable file,
NaN-dominated or truncated), ``missing`` (never fetched). Only ``ok`` cutouts are fed to
models; the others keep an all-zero placeholder row so shard rows stay aligned.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

CUTOUT_STATUS = ("ok", "blank", "off_footprint", "corrupt", "missing")


class CutoutStoreError(OSError):
    """A file of a cutout store is missing, truncated or corrupt; the message names it."""


def write_store(path: str | os.PathLike, source_ids: Sequence[str], cutouts: np.ndarray,
                status: Sequence[str], reason: Sequence[str] | None = None,
                meta: dict | None = None, shard_size: int = 4096) -> Path:
    """Write a cutout store atomically.

    Parameters
    ----------
    path : path-like
        Store directory (created; replaced if it exists).
    source_ids : sequence of str
        One id per cutout, unique.
    cutouts : ndarray, shape (n, H, W, C)
        Pixel data; rows whose status is not ``ok`` should be zeros.
    status : sequence of str
        One of :data:`CUTOUT_STATUS` per row.
    reason : sequence of str, optional
        Free-text reason for a non-``ok`` status (empty for ``ok``).
    meta : dict, optional
        Store metadata (pixel scale in arcsec/pix, bands, units, ...).
    shard_size : int
        Cutouts per shard file.
    """
    path = Path(path)
    n = len(source_ids)
    cutouts = np.asarray(cutouts)
    if cutouts.ndim != 4 or cutouts.shape[0] != n:
        raise ValueError(f"cutouts must have shape (n={n}, H, W, C), got {cutouts.shape}")
    bad = sorted(set(status) - set(CUTOUT_STATUS))
    if bad:
        raise ValueError(f"unknown cutout_status values {bad}; allowed: {CUTOUT_STATUS}")
    if len(set(source_ids)) != n:
        raise ValueError("source_ids in a cutout store must be unique")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        shard = np.arange(n) // shard_size
        row = np.arange(n) % shard_size
        for k in range(int(shard.max()) + 1 if n else 0):
            np.save(tmp / f"shard-{k:05d}.npy", cutouts[shard == k])
        index = pd.DataFrame({
            "source_id": pd.Series(list(source_ids), dtype="string"),
            "shard": shard.astype("int32"),
            "row": row.astype("int32"),
            "cutout_status": pd.Series(list(status), dtype="string"),
            "reason": pd.Series(list(reason) if reason is not None else [""] * n,
                                dtype="string"),
        })
        index.to_parquet(tmp / "index.parquet", index=False)
        m = dict(meta or {})
        m.update(shape=list(cutouts.shape[1:]), dtype=str(cutouts.dtype), n=n)
        (tmp / "meta.json").write_text(json.dumps(m, indent=1, sort_keys=True))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


class CutoutStore:
    """Read access to a store written by :func:`write_store`.

    Examples
    --------
    >>> store = CutoutStore("results/synthetic/cutouts/legacy/dr9/hpx=1234/rgb")  # doctest: +SKIP
    >>> images, status = store.get(["legacy:dr9:123"])                              # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index = self.path / "index.parquet"
        if not index.exists():
            raise FileNotFoundError(f"cutout store index not found: {index}")
        try:
            self.index = pd.read_parquet(index)
        except Exception as exc:
            raise CutoutStoreError(f"cutout store index {index} unreadable: "
                                   f"{type(exc).__name__}: {exc}") from None
        meta = self.path / "meta.json"
        try:
            self.meta = json.loads(meta.read_text())
        except (OSError, ValueError) as exc:
            raise CutoutStoreError(f"cutout store metadata {meta} unreadable: "
                                   f"{type(exc).__name__}: {exc}") from None
        self._pos = pd.Series(np.arange(len(self.index)), index=self.index["source_id"])
        self._shards: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.meta["shape"])

    def _shard(self, k: int) -> np.ndarray:
        """Shard ``k``, memory-mapped.

        Raises
        ------
        CutoutStoreError
            Naming the shard file when it is missing, truncated (numpy's own "mmap
            length is greater than file size" names no file) or holds fewer rows than
            the index says.
        """
        if k not in self._shards:
            f = self.path / f"shard-{k:05d}.npy"
            try:
                arr = np.load(f, mmap_mode="r")
            except Exception as exc:  # ValueError (truncated), OSError, EOFError
                raise CutoutStoreError(f"cutout store shard {f} unreadable (truncated or "
                                       f"corrupt): {type(exc).__name__}: {exc}") from None
            need = int(self.index.loc[self.index["shard"] == k, "row"].max() + 1) \
                if (self.index["shard"] == k).any() else 0
            if arr.ndim != 1 + len(self.shape) or len(arr) < need:
                raise CutoutStoreError(f"cutout store shard {f} holds {arr.shape}, the index "
                                       f"needs {need} rows of {self.shape}")
            self._shards[k] = arr
        return self._shards[k]

    def get(self, source_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Cutouts and statuses for ``source_ids``; unknown ids come back ``missing`` (zeros)."""
        out = np.zeros((len(source_ids), *self.shape), dtype=self.meta["dtype"])
        status = np.full(len(source_ids), "missing", dtype=object)
        pos = self._pos.reindex(list(source_ids))
        for i, p in enumerate(pos.to_numpy()):
            if np.isnan(p):
                continue
            rec = self.index.iloc[int(p)]
            out[i] = self._shard(int(rec["shard"]))[int(rec["row"])]
            status[i] = rec["cutout_status"]
        return out, status

    def iter_batches(self, batch_size: int = 256, only_ok: bool = True
                     ) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        """Yield ``(index_rows, cutouts)`` in store order, shard by shard."""
        idx = self.index
        if only_ok:
            idx = idx[idx["cutout_status"] == "ok"]
        for k, rows in idx.groupby("shard", sort=True):
            data = self._shard(int(k))
            for start in range(0, len(rows), batch_size):
                part = rows.iloc[start:start + batch_size]
                yield part, np.asarray(data[part["row"].to_numpy()])
