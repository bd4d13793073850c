"""Image cutouts: sharded array stores indexed by ``source_id`` (see :mod:`.store`)."""

from .store import CUTOUT_STATUS, CutoutStore, CutoutStoreError, write_store

__all__ = ["CUTOUT_STATUS", "CutoutStore", "CutoutStoreError", "write_store"]
