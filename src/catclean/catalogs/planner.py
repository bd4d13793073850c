"""The query planner of live catalog providers: which cones to ask for.

A *query unit* is a cone (centre, radius). If a host cone is at least as large as the
partition pixel, the partition is covered by one cone circumscribing the pixel; otherwise
every host cone touching the pixel is one unit. A unit whose answer reaches the
service's row limit may be cut short, so it is split (:func:`split_unit`) into the
nested HEALPix sub-pixels (at higher nside) of its region that intersect it, each asked
for with its circumscribing cone, recursively.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .geometry import angular_separation_deg, pixel_cone

#: finest sub-pixel nside a query may be split to (~0.2 arcsec pixels)
MAX_SPLIT_NSIDE = 2**20


@dataclass(frozen=True)
class Unit:
    """One cone query: centre and radius (deg), and the (nested) pixel it stands for."""

    ra: float
    dec: float
    radius: float
    nside: int
    pix: int


def plan_units(cones: pd.DataFrame, hpx: int, nside: int) -> list[Unit]:
    """The initial query units of partition ``hpx`` (see the module docstring)."""
    ok = cones[cones.host_status == "ok"]
    if ok.empty:
        return []
    pra, pdec, prad = pixel_cone(nside, hpx)
    sep = angular_separation_deg([pra], [pdec], ok.RA, ok.DEC)[0]
    rad = ok.radius_deg.to_numpy(float)
    touch = sep <= rad + prad
    if not touch.any():
        return []
    if (rad[touch] >= prad).any():
        return [Unit(pra, pdec, prad, nside, hpx)]
    return [Unit(float(r.RA), float(r.DEC), float(r.radius_deg) * (1 + 1e-6) + 1e-7,
                 nside, hpx) for r in ok[touch].itertuples()]


def split_unit(unit: Unit) -> list[Unit]:
    """Sub-pixel units covering ``unit``: nested children of its pixel, descended until
    their circumscribing cones are smaller than the unit, keeping those that intersect."""
    level = [(unit.nside, unit.pix)]
    while True:
        nside = level[0][0] * 2
        if nside > MAX_SPLIT_NSIDE:
            raise RuntimeError(f"cannot split query cone further (nside > {MAX_SPLIT_NSIDE})")
        children = []
        for _, p in level:
            for c in range(4 * p, 4 * p + 4):
                ra, dec, rad = pixel_cone(nside, c)
                if angular_separation_deg([ra], [dec], [unit.ra], [unit.dec])[0, 0] \
                        <= unit.radius + rad:
                    children.append((nside, c, ra, dec, rad))
        if not children:
            return []
        if max(ch[4] for ch in children) < unit.radius:
            return [Unit(ra, dec, rad, n, c) for n, c, ra, dec, rad in children]
        level = [(n, c) for n, c, *_ in children]
