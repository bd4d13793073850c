"""Issue 15: property-based tests (hypothesis) of config validation and of the query
builders. A hostile config value is either rejected with a ConfigError naming its key, or
accepted and safe; a query never carries config text other than validated numbers and
whitelisted names."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catclean.catalogs.planner import Unit
from catclean.catalogs.schema import NATIVE_COLUMNS, RELEASES
from catclean.catalogs.services import SURVEY_PROVIDERS
from catclean.catalogs.services.datalab import LEGACY_TABLES
from catclean.config import ConfigError, deep_merge, validate_config
from catclean.config import default_config as _default

BASE = _default()
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

SHELL_META = set(";|&$`<>()\\\"'*?[]{}!#~ \t\n\r")
hostile = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["..", "../x", "a/../b", "/etc", "r; echo INJECTED; #", "a b", "$(id)",
                     "`id`", "x'y", "dr9; DROP TABLE x", "dr9' OR '1'='1", "dr9--", "",
                     ".hidden", "a\nb", "dr9\x00", "dr17", "dr9", "dr2", "ok_name"]))


def _validate(overrides: dict):
    cfg = deep_merge({k: v for k, v in BASE.items()}, overrides)
    return validate_config(cfg)


def _rejected_naming(key: str, overrides: dict) -> bool:
    try:
        _validate(overrides)
    except ConfigError as exc:
        assert f"config key '{key}'" in str(exc), str(exc)
        return True
    return False


@SETTINGS
@given(value=hostile)
def test_run_name_is_rejected_or_one_safe_path_component(value):
    if _rejected_naming("run_name", {"run_name": value}):
        return
    assert value and "/" not in value and ".." not in value and not value.startswith(".")
    assert not set(value) & SHELL_META


@SETTINGS
@given(value=hostile)
def test_results_dir_is_rejected_or_a_safe_relative_path(value):
    if _rejected_naming("results_dir", {"results_dir": value}):
        return
    assert value and not value.startswith("/")
    assert ".." not in value.split("/")
    assert not set(value) & SHELL_META


@SETTINGS
@given(survey=st.sampled_from(sorted(RELEASES)), value=hostile,
       provider=st.sampled_from(["synthetic", "live"]))
def test_release_is_rejected_or_known(survey, value, provider):
    over = {"surveys": {survey: {"release": value, "provider": provider}}}
    if _rejected_naming(f"surveys.{survey}.release", over):
        return
    assert value in RELEASES[survey]


@SETTINGS
@given(name=hostile)
def test_unknown_survey_names_are_rejected(name):
    if name in RELEASES:
        return
    with pytest.raises(ConfigError, match=r"config key 'surveys"):
        _validate({"surveys": {name: {"enabled": True, "release": "dr9",
                                      "provider": "synthetic"}}})


# ------------------------------------------------------------------- query builders
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                    st.text(max_size=20), st.none(), st.booleans())
limits = st.one_of(st.integers(min_value=-10, max_value=10**10), st.text(max_size=10),
                   st.floats(allow_nan=True))
SQL_WORDS = {"SELECT", "TOP", "FROM", "WHERE", "CONTAINS", "POINT", "CIRCLE", "ICRS", "AS",
             "JOIN", "ON", "n", "p", "ra", "dec", "dbo", "fGetNearbyObjEq", "PhotoPrimary",
             "objID", "1"}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _whitelist(survey: str) -> set[str]:
    names = set(SQL_WORDS) | set(NATIVE_COLUMNS[survey])
    for t in LEGACY_TABLES.values():
        names |= set(t.split("."))
    return names


def _provider(survey: str, release: str):
    services = deep_merge(BASE["services"], {"cache_dir": None})
    return SURVEY_PROVIDERS[survey](survey, release, services)


def _leftover(text: str, survey: str) -> list[str]:
    """Tokens of ``text`` that are neither numbers, punctuation nor whitelisted names."""
    text = NUMBER.sub(" ", text)
    tokens = re.findall(r"[^\s,()'=.\[\]]+", text)
    return [t for t in tokens if t not in _whitelist(survey)]


@SETTINGS
@given(survey=st.sampled_from(["legacy", "sdss", "ps1"]), release=hostile,
       ra=numbers, dec=numbers, radius=numbers, limit=limits)
def test_queries_hold_only_numbers_and_whitelisted_names(survey, release, ra, dec, radius,
                                                         limit):
    try:
        p = _provider(survey, release)
    except ValueError as exc:  # an unknown release never reaches a query
        assert release not in RELEASES[survey] and f"surveys.{survey}.release" in str(exc)
        return
    unit = Unit(ra=ra, dec=dec, radius=radius, nside=32, pix=0)
    try:
        req = p.request(unit, limit)
    except (ValueError, TypeError):
        return                                            # rejected, nothing sent
    if survey == "ps1":
        values = [v for k, v in req["params"].items()]
        assert not _leftover(" ".join(values), survey), values
        assert req["url"].endswith(f"/panstarrs/{release}/stack.csv") and release in RELEASES[survey]
    else:
        query = req["query"]
        assert not _leftover(query, survey), query
        for v in (req.get("params") or req.get("data") or {}).values():
            assert v in (query, "csv", "votable", "doQuery", "ADQL")
