"""The live services, one module each, with their parsers.

============== ========================================== =================================
module         service                                    serves
============== ========================================== =================================
``datalab``    NOIRLab Data Lab TAP                       Legacy Surveys catalogs
``skyserver``  SDSS SkyServer ``SqlSearch``               SDSS PhotoPrimary
``mast``       MAST catalogs API                          Pan-STARRS1 stack
``nsa``        SDSS SAS file download (resumable)         NSA v1_0_1 hosts
``legacy_viewer`` Legacy Surveys viewer ``cutout.*``      cutouts (:mod:`catclean.cutouts`)
============== ========================================== =================================

Catalog services share :mod:`.base` (:class:`~.base.LiveProvider`); every service makes
its HTTP requests through one :class:`catclean.net.Fetcher` (one retry/backoff policy,
one response cache, one bounded thread pool).
"""

from .datalab import LegacyTAPProvider
from .mast import PS1MASTProvider
from .skyserver import SDSSSkyServerProvider

#: the live catalog provider of each survey
SURVEY_PROVIDERS = {"legacy": LegacyTAPProvider, "sdss": SDSSSkyServerProvider,
                    "ps1": PS1MASTProvider}

__all__ = ["SURVEY_PROVIDERS", "LegacyTAPProvider", "PS1MASTProvider",
           "SDSSSkyServerProvider"]
