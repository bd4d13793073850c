"""The interface of a survey catalog provider.

A provider answers one question: *the native catalog rows of this survey inside HEALPix
pixel ``hpx`` that lie within any host cone*. The workflow's ``query_catalog`` rule calls
:meth:`CatalogProvider.query` once per (survey, partition). Implementations:
:class:`~catclean.catalogs.synthetic.SyntheticProvider` (the embedded sky) and the live
services of :mod:`catclean.catalogs.services`; :func:`catclean.catalogs.providers.get_provider`
picks one from the config.
"""

from __future__ import annotations

import abc

import pandas as pd


class CatalogProvider(abc.ABC):
    """Interface of a survey catalog provider."""

    survey: str
    release: str

    @abc.abstractmethod
    def query(self, cones: pd.DataFrame, hpx: int, nside: int) -> pd.DataFrame:
        """Native catalog rows inside pixel ``hpx`` within any cone of ``cones``.

        Parameters
        ----------
        cones : pandas.DataFrame
            The hosts table with ``host_status``, ``RA``, ``DEC`` (deg) and ``radius_deg``.
        hpx : int
            HEALPix pixel (nested ordering).
        nside : int

        Returns
        -------
        pandas.DataFrame
            The survey's native columns (possibly zero rows, never None).
        """

    def describe(self) -> dict:
        """Provenance of the last query (query text, URL, release...)."""
        return {"provider": type(self).__name__, "survey": self.survey,
                "release": self.release}
