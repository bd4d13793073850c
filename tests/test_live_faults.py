"""Fault handling of the live clients against a local replay server: retries on 5xx,
429 + Retry-After, timeouts, truncated and malformed bodies; empty results; the final
error names service, URL, status and query."""

import sys
from pathlib import Path

import pandas as pd
import pytest

from catclean.catalogs.normalize import normalize
from catclean.catalogs.providers import get_provider
from catclean.catalogs.schema import NATIVE_COLUMNS
from catclean.config import deep_merge, default_config
from catclean.net import Fetcher, ParseError, ServiceError, ServiceSettings, retry_after_seconds

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
import live_replay as R  # noqa: E402

SQL_PATH = "/dr17/SkyServerWS/SearchTools/SqlSearch"
CENTRE = (150.5, 2.0)


@pytest.fixture(scope="module")
def table():
    return R.sdss_table([CENTRE], n=30)


@pytest.fixture
def server(table):
    srv = R.ReplayServer()
    srv.route(SQL_PATH, R.skyserver_service(table))
    srv.route("/tap/sync", R.datalab_service({"ls_dr9.tractor": R.legacy_table([CENTRE])}))
    srv.start()
    yield srv
    srv.stop()


def cones(radius=0.07):
    return pd.DataFrame({"NSAID": [1], "RA": [CENTRE[0]], "DEC": [CENTRE[1]],
                         "host_status": ["ok"], "radius_deg": [radius]})


def hpx():
    from astropy import units as u
    from astropy_healpix import HEALPix

    return int(HEALPix(32, "nested").lonlat_to_healpix(CENTRE[0] * u.deg, CENTRE[1] * u.deg))


def provider(srv, tmp_path, survey="sdss", **kw):
    services = {"cache_dir": str(tmp_path / "cache"), "timeout": 0.5, "retries": 3,
                "backoff": 0.01, "backoff_max": 5.0,
                "skyserver": {"url": srv.url + "/{release}/SkyServerWS/SearchTools/SqlSearch"},
                "datalab": {"url": srv.url + "/tap", "format": "csv"}, **kw}
    services = deep_merge(default_config()["services"], services)
    rel = {"sdss": "dr17", "legacy": "dr9"}[survey]
    p = get_provider(survey, {"provider": "live", "release": rel}, services)
    p.waits = []
    p.fetcher.sleep = p.waits.append  # record backoff waits instead of sleeping
    return p


def good_answer(table):
    return R.skyserver_csv(table[NATIVE_COLUMNS["sdss"]])


def test_500_then_200_recovers(server, tmp_path):
    server.script(SQL_PATH, R.Reply(500, b"Internal Server Error"))
    p = provider(server, tmp_path)
    df = p.query(cones(), hpx(), 32)
    assert len(df) > 0 and len(server.requests_to(SQL_PATH)) == 2
    assert p.waits == [0.01]


def test_429_honours_retry_after(server, tmp_path):
    server.script(SQL_PATH, R.Reply(429, b"slow down", {"Retry-After": "2"}))
    p = provider(server, tmp_path)
    df = p.query(cones(), hpx(), 32)
    assert len(df) > 0
    assert p.waits == [2.0]  # Retry-After, not the 0.01 s backoff
    assert 0 < retry_after_seconds("Wed, 21 Oct 2099 07:28:00 GMT")
    assert retry_after_seconds("garbage") is None


def test_backoff_doubles_and_is_capped(server, tmp_path):
    for _ in range(3):
        server.script(SQL_PATH, R.Reply(503, b"busy"))
    p = provider(server, tmp_path, backoff=1.0, backoff_max=3.0)
    p.query(cones(), hpx(), 32)
    assert p.waits == [1.0, 2.0, 3.0]


def test_timeout_is_retried(server, tmp_path, table):
    server.script(SQL_PATH, R.Reply(200, good_answer(table), delay=1.5))
    p = provider(server, tmp_path)
    df = p.query(cones(), hpx(), 32)
    assert len(df) > 0 and len(server.requests_to(SQL_PATH)) == 2


def test_truncated_body_is_retried(server, tmp_path, table):
    body = good_answer(table)
    server.script(SQL_PATH, R.Reply(200, body, truncate=len(body) // 2))
    p = provider(server, tmp_path)
    df = p.query(cones(), hpx(), 32)
    assert len(server.requests_to(SQL_PATH)) == 2
    full = provider(server, tmp_path, refetch=True).query(cones(), hpx(), 32)
    pd.testing.assert_frame_equal(df, full)


def test_malformed_csv_is_retried_then_recovers(server, tmp_path):
    server.script(SQL_PATH, R.Reply(200, b"#Table1\nobjID,ra,dec\n1,2\n3,4,5,6,7\n"))
    p = provider(server, tmp_path)
    assert len(p.query(cones(), hpx(), 32)) > 0
    assert len(server.requests_to(SQL_PATH)) == 2


def test_persistent_malformed_answer_fails_with_clear_message(server, tmp_path):
    for _ in range(4):
        server.script(SQL_PATH, R.Reply(200, b"<html><body>Server busy</body></html>"))
    p = provider(server, tmp_path)
    with pytest.raises(ServiceError) as err:
        p.query(cones(), hpx(), 32)
    e = err.value
    assert e.service == "skyserver" and e.status == 200
    msg = str(e)
    assert "not CSV" in msg and "4 attempts" in msg
    assert server.url + SQL_PATH in msg and "fGetNearbyObjEq(150.5" in msg
    assert not list((tmp_path / "cache").rglob("*.csv"))  # nothing bad was cached


def test_persistent_5xx_names_url_status_and_query(server, tmp_path):
    for _ in range(4):
        server.script(SQL_PATH, R.Reply(503, b"Service Unavailable"))
    p = provider(server, tmp_path)
    with pytest.raises(ServiceError, match=r"skyserver: failed after 4 attempts.*HTTP 503.*"
                                           r"status=503, query=SELECT TOP"):
        p.query(cones(), hpx(), 32)


def test_client_error_is_not_retried(server, tmp_path):
    server.script(SQL_PATH, R.Reply(400, b"bad request: syntax"))
    p = provider(server, tmp_path)
    with pytest.raises(ServiceError, match="HTTP 400") as err:
        p.query(cones(), hpx(), 32)
    assert err.value.status == 400 and len(server.requests_to(SQL_PATH)) == 1


def test_empty_result_gives_zero_rows_with_native_columns(server, tmp_path):
    server.route(SQL_PATH, R.skyserver_service(R.sdss_table([(10.0, -5.0)], n=5)))
    p = provider(server, tmp_path)
    df = p.query(cones(), hpx(), 32)
    assert df.empty and list(df.columns) == NATIVE_COLUMNS["sdss"]
    assert len(server.requests_to(SQL_PATH)) == 1  # a header-only answer is valid
    assert normalize(df, "sdss", "dr17", 32).empty
    # SkyServer's bare '#Table1' marker is also an empty result; a 0-byte body is not
    for body, ok in [(b"#Table1\n", True), (b"", False)]:
        server.route(SQL_PATH, lambda req, b=body: R.Reply(200, b))
        q = provider(server, tmp_path, refetch=True, retries=1)
        if ok:
            assert q.query(cones(), hpx(), 32).empty
        else:
            with pytest.raises(ServiceError, match="empty answer"):
                q.query(cones(), hpx(), 32)


def test_tap_csv_fault_then_success(server, tmp_path):
    server.script("/tap/sync", R.Reply(502, b"Bad Gateway"),
                  R.Reply(200, b"release,brickid\n9010"))  # wrong columns, cut short
    p = provider(server, tmp_path, survey="legacy")
    with pytest.raises(ServiceError, match="lacks required column"):
        p.query(cones(), hpx(), 32)
    p = provider(server, tmp_path, survey="legacy")
    assert len(p.query(cones(), hpx(), 32)) > 0


def test_fetcher_parse_error_message_and_connection_refused(tmp_path):
    s = ServiceSettings(name="demo", url="http://127.0.0.1:9", timeout=0.5, retries=1,
                        backoff=0.0)
    f = Fetcher(s, "dr0", cache_dir=None, sleep=lambda w: None)

    def parse(b):
        raise ParseError("never")

    with pytest.raises(ServiceError, match=r"demo: failed after 2 attempts.*connection "
                                           r"failed.*url=http://127.0.0.1:9/x, status=None, "
                                           r"query=Q1"):
        f.fetch("http://127.0.0.1:9/x", parse=parse, query="Q1")
