"""Live catalog providers against a local replay server (no network): parsing of the real
formats, query safety, splitting at the row limit, cache and provenance, releases."""

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catclean.catalogs.geometry import angular_separation_deg, in_cones_and_pixel
from catclean.catalogs.normalize import normalize
from catclean.catalogs.planner import Unit, split_unit
from catclean.catalogs.providers import get_provider
from catclean.catalogs.schema import NATIVE_COLUMNS
from catclean.catalogs.services.base import conform_native, parse_csv
from catclean.catalogs.services.mast import parse_mast_json
from catclean.config import deep_merge, default_config
from catclean.net import ParseError, SchemaError, ServiceError

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
import live_replay as R  # noqa: E402

CENTRES = [(150.5, 2.0), (150.62, 2.1)]
SQL_PATH = "/dr17/SkyServerWS/SearchTools/SqlSearch"
PS1_CSV, PS1_JSON = "/api/v0.1/panstarrs/dr2/stack.csv", "/api/v0.1/panstarrs/dr2/stack.json"


@pytest.fixture(scope="module")
def tables():
    return {"legacy": R.legacy_table(CENTRES), "sdss": R.sdss_table(CENTRES),
            "ps1": R.ps1_table(CENTRES)}


@pytest.fixture
def server(tables):
    srv = R.ReplayServer()
    srv.route("/tap/sync", R.datalab_service({"ls_dr9.tractor": tables["legacy"],
                                              "ls_dr10.tractor": tables["legacy"]}))
    srv.route(SQL_PATH, R.skyserver_service(tables["sdss"]))
    srv.route(PS1_CSV, R.mast_service(tables["ps1"], "csv"))
    srv.route(PS1_JSON, R.mast_service(tables["ps1"], "json"))
    srv.start()
    yield srv
    srv.stop()


def services_for(srv, tmp_path, **extra):
    s = {"cache_dir": str(tmp_path / "cache"), "refetch": False, "timeout": 5, "retries": 2,
         "backoff": 0.01, "backoff_max": 0.05, "row_limit": 1000, "concurrency": 2,
         "datalab": {"url": srv.url + "/tap"},
         "skyserver": {"url": srv.url + "/{release}/SkyServerWS/SearchTools/SqlSearch"},
         "mast": {"url": srv.url + "/api/v0.1"}}
    # the resolved defaults with this test's server and settings over them
    return deep_merge(default_config()["services"], deep_merge(s, extra))


def cones():
    return pd.DataFrame({"NSAID": [1001, 1002], "RA": [c[0] for c in CENTRES],
                         "DEC": [c[1] for c in CENTRES], "host_status": ["ok", "ok"],
                         "radius_deg": [0.07, 0.06]})


def hpx_of(ra, dec, nside=32):
    from astropy import units as u
    from astropy_healpix import HEALPix

    return int(HEALPix(nside, "nested").lonlat_to_healpix(ra * u.deg, dec * u.deg))


HPX = hpx_of(*CENTRES[0])
RELEASE = {"legacy": "dr9", "sdss": "dr17", "ps1": "dr2"}
POS = {"legacy": ("ra", "dec", "ls_id"), "sdss": ("ra", "dec", "objID"),
       "ps1": ("raStack", "decStack", "objID")}


def expected_ids(table, survey):
    rac, decc, idc = POS[survey]
    t = table[table.primaryDetection == 1] if survey == "ps1" else table
    keep = in_cones_and_pixel(t[rac], t[decc], cones(), HPX, 32)
    return set(t.loc[keep, idc].astype("int64"))


# -- end to end per survey -----------------------------------------------------------------
@pytest.mark.parametrize("survey,fmt", [("legacy", "votable"), ("legacy", "csv"),
                                        ("sdss", None), ("ps1", "csv"), ("ps1", "json")])
def test_provider_returns_native_columns_and_exact_rows(server, tmp_path, tables, survey, fmt):
    svc = {"legacy": "datalab", "sdss": "skyserver", "ps1": "mast"}[survey]
    extra = {svc: {"format": fmt}} if fmt else {}
    p = get_provider(survey, {"provider": "live", "release": RELEASE[survey]},
                     services_for(server, tmp_path, **extra))
    df = p.query(cones(), HPX, 32)
    assert list(df.columns) == NATIVE_COLUMNS[survey]
    idc = POS[survey][2]
    assert set(df[idc]) == expected_ids(tables[survey], survey)
    assert len(df) > 10
    assert df[idc].dtype == np.int64
    # values survive the round trip through the service format
    src = tables[survey].drop_duplicates(idc).set_index(idc)
    col = {"legacy": "flux_r", "sdss": "petroMag_r", "ps1": "rKronMag"}[survey]
    np.testing.assert_allclose(df.set_index(idc)[col], src.loc[df[idc], col], rtol=1e-6)
    if survey == "legacy":
        assert set(df["type"]) <= {"PSF", "REX", "EXP", "DEV", "SER"}
    if survey == "ps1":
        assert df["ebv"].isna().all()  # no offline dust map (documented)
        assert all(r.args["primaryDetection"] == "1" for r in server.log)
    norm = normalize(df, survey, RELEASE[survey], 32)
    assert len(norm) == len(df)
    assert norm["mag_r"].notna().sum() > 0
    d = p.describe()
    assert d["release"] == RELEASE[survey] and d["survey"] == survey
    assert len(d["query"]) == 2 and all(len(r["sha256"]) == 64 for r in d["responses"])
    json.dumps(d)  # goes into Parquet provenance


def test_sdss_objid_keeps_full_int64_precision(server, tmp_path, tables):
    p = get_provider("sdss", {"provider": "live", "release": "dr17"},
                     services_for(server, tmp_path))
    df = p.query(cones(), HPX, 32)
    assert (df["objID"] > 2**59).all()
    assert set(df["objID"]) <= set(tables["sdss"]["objID"])


# -- the real recorded answers shipped with astroquery ----------------------------------------
def test_parses_real_skyserver_csv_from_astroquery():
    path = R.astroquery_data("sdss/tests/data/xid_im.txt")
    body = path.read_bytes()
    df = parse_csv(body, "skyserver")
    with open(path) as fh:
        rows = list(csv.reader(line for line in fh if not line.startswith("#")))
    header, rows = rows[0], [r for r in rows[1:] if r]
    assert list(df.columns) == header and len(df) == len(rows)
    cols = ["objID", "ra", "dec", "run", "rerun", "camcol", "field"]
    out = conform_native(df, "sdss", "skyserver", cols)  # objid -> objID (case)
    assert out["objID"].tolist() == [int(r[header.index("objid")]) for r in rows]
    np.testing.assert_allclose(out["ra"], [float(r[0]) for r in rows])
    assert out["run"].dtype == np.int64
    # the spectro answer has extra columns; the photometric subset still parses
    sp = parse_csv(R.astroquery_data("sdss/tests/data/xid_sp.txt").read_bytes(), "sdss")
    assert "specobjid" in sp.columns and len(sp) >= 1


def test_real_skyserver_answer_lacking_columns_names_them(server, tmp_path):
    body = R.astroquery_data("sdss/tests/data/xid_im.txt").read_bytes()
    server.route(SQL_PATH, lambda req: R.Reply(200, body))
    p = get_provider("sdss", {"provider": "live", "release": "dr17"},
                     services_for(server, tmp_path))
    with pytest.raises(ServiceError) as err:
        p.query(cones(), HPX, 32)
    msg = str(err.value)
    assert "petroMag_g" in msg and "type" in msg and "skyserver" in msg
    assert "fGetNearbyObjEq" in msg  # the query is named
    sent = [r.args["cmd"] for r in server.requests_to(SQL_PATH)]
    assert len(sent) == len(set(sent))  # a schema problem is not retried


def test_parses_real_mast_json_from_astroquery(server, tmp_path):
    body = R.astroquery_data("mast/tests/data/panstarrs.json").read_bytes()
    doc = json.loads(body)
    df = parse_mast_json(body)
    assert list(df.columns) == [c["name"] for c in doc["info"]]
    assert len(df) == len(doc["data"])
    out = conform_native(df, "ps1", "mast", ["objID"])
    assert out["objID"].tolist() == [int(r[1]) for r in doc["data"]]
    # served as the answer of a stack query it lacks our columns: clear error
    server.route(PS1_JSON, lambda req: R.Reply(200, body))
    p = get_provider("ps1", {"provider": "live", "release": "dr2"},
                     services_for(server, tmp_path, mast={"format": "json"}))
    with pytest.raises(ServiceError, match=r"lacks required column\(s\) \['raStack'"):
        p.query(cones(), HPX, 32)


def test_tap_error_votable_is_a_clear_error(server, tmp_path):
    server.route("/tap/sync", lambda req: R.Reply(200, R.votable_error(
        'relation "ls_dr9.tractor" does not exist')))
    p = get_provider("legacy", {"provider": "live", "release": "dr9"},
                     services_for(server, tmp_path))
    with pytest.raises(ServiceError, match="does not exist") as err:
        p.query(cones(), HPX, 32)
    assert "datalab" in str(err.value) and "ls_dr9.tractor" in str(err.value)


# -- safety ----------------------------------------------------------------------------------
ADQL_RE = re.compile(r"^SELECT TOP \d+ [a-z0-9_]+(, [a-z0-9_]+)* FROM ls_dr(9|10)\.tractor "
                     r"WHERE CONTAINS\(POINT\('ICRS', ra, dec\), CIRCLE\('ICRS', -?\d+\.\d+, "
                     r"-?\d+\.\d+, \d+\.\d+\)\) = 1$")
SQL_RE = re.compile(r"^SELECT TOP \d+ p\.[A-Za-z0-9_]+(, p\.[A-Za-z0-9_]+)* FROM "
                    r"dbo\.fGetNearbyObjEq\(-?\d+\.\d+, -?\d+\.\d+, \d+\.\d+\) AS n JOIN "
                    r"PhotoPrimary AS p ON p\.objID = n\.objID$")


def test_queries_are_built_only_from_numbers_and_known_columns(server, tmp_path):
    s = services_for(server, tmp_path)
    leg = get_provider("legacy", {"provider": "live", "release": "dr9"}, s)
    sdss = get_provider("sdss", {"provider": "live", "release": "dr17"}, s)
    leg.query(cones(), HPX, 32)
    sdss.query(cones(), HPX, 32)
    adql = [r.args["QUERY"] for r in server.requests_to("/tap/sync")]
    sql = [r.args["cmd"] for r in server.requests_to(SQL_PATH)]
    assert adql and all(ADQL_RE.match(q) for q in adql)
    assert sql and all(SQL_RE.match(q) for q in sql)
    unit = Unit(150.5, 2.0, 0.07, 32, HPX)
    for bad in ["150.5); DROP TABLE ls_dr9.tractor; --", float("nan"), float("inf"), None,
                True, "150.5"]:
        with pytest.raises(ValueError):
            leg.adql(Unit(bad, 2.0, 0.07, 32, HPX), 10)
        with pytest.raises(ValueError):
            sdss.sql(Unit(150.5, bad, 0.07, 32, HPX), 10)
    with pytest.raises(ValueError):
        leg.adql(Unit(150.5, 95.0, 0.07, 32, HPX), 10)  # out of range
    with pytest.raises(ValueError):
        leg.adql(unit, "10; DELETE")  # row limit must be an int
    # config strings never reach the query: unknown releases and formats are rejected
    for survey, rel in [("legacy", "dr9; DROP TABLE x"), ("sdss", "dr17' OR '1'='1"),
                        ("ps1", "dr2&columns=*")]:
        with pytest.raises(ValueError, match="known releases"):
            get_provider(survey, {"provider": "live", "release": rel}, s)
    p = get_provider("legacy", {"provider": "live", "release": "dr9"},
                     services_for(server, tmp_path, datalab={"format": "votable' --"}))
    with pytest.raises(ValueError, match="format"):
        p.query(cones(), HPX, 32)


def test_release_maps_to_table_names(server, tmp_path):
    s = services_for(server, tmp_path)
    unit = Unit(150.5, 2.0, 0.07, 32, HPX)
    assert "FROM ls_dr9.tractor " in get_provider(
        "legacy", {"provider": "live", "release": "dr9"}, s).adql(unit, 5)
    assert "FROM ls_dr10.tractor " in get_provider(
        "legacy", {"provider": "live", "release": "dr10"}, s).adql(unit, 5)
    p = get_provider("sdss", {"provider": "live", "release": "dr17"}, s)
    assert p.request(unit, 5)["url"].endswith("/dr17/SkyServerWS/SearchTools/SqlSearch")
    p = get_provider("ps1", {"provider": "live", "release": "dr2"}, s)
    assert p.request(unit, 5)["url"].endswith("/panstarrs/dr2/stack.csv")


# -- scale: splitting at the row limit -------------------------------------------------------
def test_queries_split_until_under_row_limit(server, tmp_path, tables):
    big = services_for(server, tmp_path, cache_dir=None)
    ref = get_provider("legacy", {"provider": "live", "release": "dr9"}, big)
    want = ref.query(cones(), HPX, 32)
    n_big = len(server.requests_to("/tap/sync"))
    small = services_for(server, tmp_path, cache_dir=None, row_limit=8)
    p = get_provider("legacy", {"provider": "live", "release": "dr9"}, small)
    got = p.query(cones(), HPX, 32)
    pd.testing.assert_frame_equal(got, want)
    reqs = server.requests_to("/tap/sync")[n_big:]
    assert len(reqs) > n_big
    assert all("SELECT TOP 8 " in r.args["QUERY"] for r in reqs)
    rows = [r["rows"] for r in p.describe()["responses"]]
    assert max(rows) == 8  # some answers hit the limit and were split ...
    assert sum(1 for r in rows if r < 8) >= 1  # ... into answers under it


def test_split_covers_the_cone():
    unit = Unit(150.5, 2.0, 0.05, 32, HPX)
    kids = split_unit(unit)
    assert kids and all(k.radius < unit.radius for k in kids)
    rng = np.random.default_rng(0)
    r = 0.05 * np.sqrt(rng.uniform(0, 1, 2000))
    t = rng.uniform(0, 2 * np.pi, 2000)
    ra, dec = 150.5 + r * np.cos(t) / np.cos(np.radians(2.0)), 2.0 + r * np.sin(t)
    inside = in_cones_and_pixel(ra, dec, pd.DataFrame({
        "RA": [150.5], "DEC": [2.0], "radius_deg": [0.05], "host_status": ["ok"]}), HPX, 32)
    cov = (angular_separation_deg(ra, dec, [k.ra for k in kids], [k.dec for k in kids])
           <= np.array([k.radius for k in kids])[None]).any(axis=1)
    assert cov[inside].all()


# -- cache and provenance --------------------------------------------------------------------
def test_cache_reuse_refetch_and_sidecar(server, tmp_path):
    s = services_for(server, tmp_path)
    spec = {"provider": "live", "release": "dr17"}
    first = get_provider("sdss", spec, s)
    a = first.query(cones(), HPX, 32)
    n1 = len(server.requests_to(SQL_PATH))
    side = sorted((tmp_path / "cache" / "skyserver" / "dr17").glob("*.json"))
    assert len(side) == n1 == 2
    rec = json.loads(side[0].read_text())
    body = Path(rec["cache_file"]).read_bytes()
    import hashlib
    assert rec["sha256"] == hashlib.sha256(body).hexdigest()
    assert rec["release"] == "dr17" and rec["service"] == "skyserver"
    assert "fGetNearbyObjEq" in rec["query"] and rec["url"].startswith(server.url)
    assert rec["fetched_utc"].endswith("+00:00")
    # a rerun reuses the cache: no request, same rows, same provenance
    second = get_provider("sdss", spec, s)
    b = second.query(cones(), HPX, 32)
    assert len(server.requests_to(SQL_PATH)) == n1
    pd.testing.assert_frame_equal(a, b)
    assert second.n_from_cache == 2 and first.n_from_cache == 0
    assert second.describe() == first.describe()  # provenance identical on a cached rerun
    # a damaged cache entry is refetched
    Path(rec["cache_file"]).write_bytes(body[:-20])
    get_provider("sdss", spec, s).query(cones(), HPX, 32)
    assert len(server.requests_to(SQL_PATH)) == n1 + 1
    # services.refetch: true asks again
    get_provider("sdss", spec, {**s, "refetch": True}).query(cones(), HPX, 32)
    assert len(server.requests_to(SQL_PATH)) == n1 + 3


def test_no_valid_host_or_cone_outside_pixel_gives_empty_native_table(server, tmp_path):
    s = services_for(server, tmp_path)
    p = get_provider("legacy", {"provider": "live", "release": "dr9"}, s)
    far = hpx_of(10.0, -40.0)
    df = p.query(cones(), far, 32)
    assert df.empty and list(df.columns) == NATIVE_COLUMNS["legacy"]
    assert not server.log
    assert normalize(df, "legacy", "dr9", 32).empty


def test_conform_native_rejects_text_in_numeric_column():
    df = pd.DataFrame({"objID": ["1", "2"], "ra": ["1.0", "abc"]})
    with pytest.raises(ParseError, match="'ra' is not numeric"):
        conform_native(df, "sdss", "skyserver", ["objID", "ra"])
    with pytest.raises(SchemaError, match=r"\['dec'\]"):
        conform_native(df, "sdss", "skyserver", ["objID", "ra", "dec"])
