"""SAGA-style photometric and quality cuts (paper 001 Sec. 3.1) and host association.

Each cut is a named, documented :class:`~catclean.cuts.cuts.Cut` object; cuts compose
with ``&`` and every cut becomes a boolean ``cut_<name>`` column (True = passes), so no
source is ever dropped. The column-by-column documentation with units is ``cuts.yaml``.
"""

from .association import associate_hosts
from .cuts import CUTS, Cut, apply_cuts, cutflow

__all__ = ["CUTS", "Cut", "apply_cuts", "associate_hosts", "cutflow"]
