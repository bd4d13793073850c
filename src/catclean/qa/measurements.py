"""What source extraction measures, and its settings: shared by the sep path
(:mod:`catclean.qa.extract`) and the Source Extractor path (:mod:`catclean.qa.sextractor`),
so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEASUREMENT_COLUMNS = ("x", "y", "npix", "a", "b", "theta", "flux", "peak", "r50",
                       "snr", "back", "flag")
"""Per-source measurements (pixels, ADU; ``back`` is the local background in ADU)."""


class QAInputError(ValueError):
    """An exposure cannot be graded at all (unreadable file, missing EXPTIME, ...)."""


@dataclass
class ExtractConfig:
    """Detection parameters: the keys of ``qa.extract`` (defaults and meaning in
    ``workflow/schemas/qa.schema.yaml``).

    Attributes
    ----------
    backend : str
        'sep' or 'sextractor' (the Source Extractor binary).
    thresh : float
        Detection threshold in units of the background rms (DETECT_THRESH).
    minarea : int
        Minimum isophotal area in pixels (DETECT_MINAREA).
    back_size : int
        Background mesh size in pixels (BACK_SIZE).
    back_filter : int
        Background median-filter size in meshes (BACK_FILTERSIZE).
    deblend_cont : float
        Deblending contrast (DEBLEND_MINCONT).
    max_sources : int
        Keep at most this many sources per CCD (the brightest), bounding memory.
    """

    backend: str
    thresh: float
    minarea: int
    back_size: int
    back_filter: int
    deblend_cont: float
    max_sources: int

    @classmethod
    def from_dict(cls, d: dict) -> ExtractConfig:
        """From the complete ``qa.extract`` section."""
        from ..config import settings_from

        return settings_from(cls, d)


def empty_measurements() -> dict:
    """The measurement columns of a CCD with no sources (zero-length arrays)."""
    out = {c: np.zeros(0, np.float64) for c in MEASUREMENT_COLUMNS}
    out["flag"] = np.zeros(0, np.int32)
    return out
