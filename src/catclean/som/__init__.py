"""Rotation- and flip-invariant self-organising map over cutouts (paper 004, PINK).

Modules: :mod:`.transforms` (PINK rotation/flip geometry as precomputed linear maps),
:mod:`.core` (training and mapping), :mod:`.pinkio` (PINK v2 binary files),
:mod:`.preprocess` (Sec. 3 preprocessing), :mod:`.annotate` (neuron annotation and the
per-source table), :mod:`.plots` (prototype grid, hit map, annotation map).
"""

from .core import (
    SOM,
    MapResult,
    SOMSettings,
    Stage,
    lattice_distances,
    lattice_positions,
    map_images,
    neighbourhood_function,
    train_som,
)
from .transforms import TransformPlan, make_plan

__all__ = [
    "SOM",
    "MapResult",
    "SOMSettings",
    "Stage",
    "TransformPlan",
    "lattice_distances",
    "lattice_positions",
    "make_plan",
    "map_images",
    "neighbourhood_function",
    "train_som",
]
