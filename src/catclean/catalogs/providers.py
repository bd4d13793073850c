"""Which catalog provider serves a survey: :func:`get_provider`.

``surveys.<s>.provider: synthetic`` -> :class:`~.synthetic.SyntheticProvider`;
``live`` -> the survey's live service (:data:`~.services.SURVEY_PROVIDERS`: Data Lab TAP
for Legacy, SkyServer for SDSS, MAST for PS1).
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import CatalogProvider
from .services import SURVEY_PROVIDERS
from .synthetic import SyntheticProvider


def get_provider(survey: str, spec: dict, services: dict,
                 field_catalogs: Sequence[str] = ()) -> CatalogProvider:
    """The provider configured for ``survey``.

    Parameters
    ----------
    survey : str
    spec : dict
        ``config['surveys'][survey]``.
    services : dict
        The resolved ``services`` section (read by live providers only), with
        ``cache_dir`` set.
    field_catalogs : sequence of path
        Detection catalogs of the rendered host fields (synthetic provider only).
    """
    kind = spec["provider"]
    if kind == "synthetic":
        return SyntheticProvider(survey, spec["release"], field_catalogs)
    if kind == "live":
        if survey not in SURVEY_PROVIDERS:
            raise ValueError(f"no live provider for survey {survey!r}; "
                             f"known: {sorted(SURVEY_PROVIDERS)}")
        return SURVEY_PROVIDERS[survey](survey, spec["release"], services)
    raise ValueError(f"surveys.{survey}.provider: unknown provider {kind!r}")
