"""The synthetic catalog provider: detection catalogs of rendered host fields.

:class:`SyntheticProvider` reads the detection catalogs of rendered host fields (rule
``render_field``). Host fields overlap; like the *unique area* of Legacy Surveys bricks,
a detection is kept only from the field of the host nearest to it, so every sky position
is catalogued once. A detection without a valid position (NaN, infinite or out of range;
:func:`~.geometry.valid_position`) has no nearest host and no pixel: it is kept in the
partition that holds its field host's centre, so it is catalogued exactly once and
flagged there by ``cut_valid_position``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..io import read_parquet
from .base import CatalogProvider
from .geometry import angular_separation_deg, healpix, in_cones_and_pixel, valid_position
from .schema import POSITION_COLUMNS, RELEASES


class SyntheticProvider(CatalogProvider):
    """Queries the embedded synthetic sky (detection catalogs of rendered fields)."""

    def __init__(self, survey: str, release: str, field_catalogs: Sequence[str]):
        if survey not in POSITION_COLUMNS:
            raise ValueError(f"unknown survey {survey!r}")
        if release not in RELEASES[survey]:
            raise ValueError(f"surveys.{survey}.release {release!r}: known releases "
                             f"{list(RELEASES[survey])}")
        self.survey, self.release = survey, release
        self.field_catalogs = list(field_catalogs)
        self._query = ""

    def query(self, cones: pd.DataFrame, hpx: int, nside: int) -> pd.DataFrame:
        rac, decc = POSITION_COLUMNS[self.survey]
        ok = cones[cones.host_status == "ok"].reset_index(drop=True)
        parts = []
        for path in self.field_catalogs:
            cat = read_parquet(path)
            if cat.empty:
                parts.append(cat)
                continue
            # unique area: keep detections whose nearest host centre is this field's host
            valid = valid_position(cat[rac], cat[decc])
            sep = angular_separation_deg(cat[rac], cat[decc], ok.RA, ok.DEC)
            nearest = ok.NSAID.to_numpy()[np.argmin(np.nan_to_num(sep, nan=np.inf), axis=1)]
            own = valid & (nearest == cat["field_nsaid"].to_numpy())
            keep = own & in_cones_and_pixel(cat[rac], cat[decc], cones, hpx, nside)
            if not valid.all():  # no position: the partition of the field host's centre
                keep |= ~valid & (self._host_pixel(ok, cat["field_nsaid"], nside) == hpx)
            parts.append(cat[keep])
        self._query = (f"synthetic sky: fields {[int(c) for c in ok.NSAID]} "
                       f"survey={self.survey} release={self.release} hpx={hpx} nside={nside}")
        if not parts:
            return pd.DataFrame()
        out = pd.concat(parts, ignore_index=True)
        return out.sort_values([rac, decc], kind="stable").reset_index(drop=True)

    @staticmethod
    def _host_pixel(ok: pd.DataFrame, field_nsaid, nside: int) -> np.ndarray:
        """HEALPix pixel of each row's field host centre (-1 for an unknown host)."""
        from astropy import units as u

        pix = healpix(nside).lonlat_to_healpix(ok.RA.to_numpy(float) * u.deg,
                                               ok.DEC.to_numpy(float) * u.deg)
        of = dict(zip(ok.NSAID.astype(int), np.asarray(pix, int)))
        return np.array([of.get(int(n), -1) if pd.notna(n) else -1 for n in field_nsaid])

    def describe(self) -> dict:
        return {**super().describe(), "query": self._query}
