"""The cosmology of every distance in catclean (host cones, association, field sizes)."""

from __future__ import annotations

import functools

from .config import SCHEMA_PATH, _load_yaml


@functools.cache
def cosmology_defaults() -> dict:
    """The schema's ``cosmology`` default (SAGA's FlatLambdaCDM: H0=70, Om0=0.27)."""
    return dict(_load_yaml(SCHEMA_PATH)["properties"]["cosmology"]["default"])


def make_cosmology(cfg: dict | None = None):
    """``astropy.cosmology.FlatLambdaCDM`` from the ``cosmology`` config section.

    Keys missing from ``cfg`` (or all of them, when ``cfg`` is None) take the schema's
    defaults, so a resolved config and the schema agree by construction.
    """
    from astropy.cosmology import FlatLambdaCDM

    c = {**cosmology_defaults(), **(cfg or {})}
    return FlatLambdaCDM(H0=c["H0"], Om0=c["Om0"], Tcmb0=c["Tcmb0"])
