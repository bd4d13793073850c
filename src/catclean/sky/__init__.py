"""The embedded synthetic sky.

A real simulator built on GalSim: NSA-like hosts (bulge + disk + star-forming knots),
low-surface-brightness satellites, background galaxies and stars, rendered in g, r, z with
survey-like PSF, pixel scale, depth and noise (:mod:`.render`); detection and deblending
with sep on the rendered images (:mod:`.detect`) so shreds arise the way they do in real
catalogs; and writers of each survey's native catalog columns (:mod:`.native`).
"""

from .hosts import synthetic_hosts
from .surveys import SURVEYS, SurveySpec

__all__ = ["SURVEYS", "SurveySpec", "synthetic_hosts"]
