"""NSA v1_0_1 host reader (download once, resumable, checksum; selection) and the Legacy
viewer cutout client, against a local replay server."""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from catclean import net
from catclean.catalogs.hosts_io import load_hosts
from catclean.catalogs.services.legacy_viewer import CutoutUnavailable, LegacyCutoutClient
from catclean.config import deep_merge, default_config
from catclean.cosmology import make_cosmology
from catclean.net import ServiceError
from catclean.sky.hosts import synthetic_hosts

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
import live_replay as R  # noqa: E402

NSA_PATH = "/sas/dr17/sdss/atlas/v1/nsa_v1_0_1.fits"


@pytest.fixture(scope="module")
def nsa_bytes():
    return R.nsa_fits_bytes(R.nsa_hosts_fixture())


@pytest.fixture
def server(nsa_bytes):
    srv = R.ReplayServer()
    srv.route(NSA_PATH, R.file_service(nsa_bytes))
    srv.route("/viewer/cutout.fits", R.viewer_service("fits", off_footprint_dec_below=-30))
    srv.route("/viewer/cutout.jpg", R.viewer_service("jpg", off_footprint_dec_below=-30))
    srv.start()
    yield srv
    srv.stop()


def hosts_cfg(srv, tmp_path, **nsa):
    return deep_merge(default_config()["hosts"], {
        "provider": "nsa", "z_range": [0.012, 0.035], "log_mass_range": [10.0, 11.0],
        "nsa": {"url": srv.url + NSA_PATH, "cache_dir": str(tmp_path / "nsa"),
                "ra_range": [150.0, 152.0], "dec_range": [1.0, 3.0], "retries": 2,
                "backoff": 0.01, "timeout": 5, **nsa}})


def test_nsa_download_select_and_columns(server, tmp_path, nsa_bytes):
    hosts = load_hosts(hosts_cfg(server, tmp_path), 0, make_cosmology())
    fx = R.nsa_hosts_fixture()
    want = fx[(fx.RA.between(150, 152)) & (fx.DEC.between(1, 3)) & fx.Z.between(0.012, 0.035)
              & (np.log10(fx.ELPETRO_MASS / 0.49)).between(10.0, 11.0)]
    assert hosts.NSAID.tolist() == sorted(want.NSAID.tolist()) and len(hosts) == 2
    syn = synthetic_hosts(2, (150, 151), (1, 2), (0.01, 0.02), (10, 11), 0, make_cosmology())
    syn_cols = [c for c in syn.columns if not c.startswith("sim_")]
    assert list(hosts.columns) == syn_cols
    for c in syn_cols:
        assert hosts[c].dtype == syn[c].dtype, c
    assert len(hosts.SERSIC_FLUX.iloc[0]) == 7
    np.testing.assert_allclose(hosts.RA, want.sort_values("NSAID").RA)
    side = json.loads((tmp_path / "nsa" / "nsa_v1_0_1.fits.json").read_text())
    assert side["sha256"] == hashlib.sha256(nsa_bytes).hexdigest()
    assert side["bytes"] == len(nsa_bytes) and side["url"].endswith(NSA_PATH)
    # downloaded once: a second load makes no request
    n = len(server.log)
    load_hosts(hosts_cfg(server, tmp_path, nsaids=[1002]), 0, make_cosmology())
    assert len(server.log) == n


def test_nsa_nsaid_cones_and_local_path(server, tmp_path, nsa_bytes):
    local = tmp_path / "nsa_local.fits"
    local.write_bytes(nsa_bytes)
    cfg = hosts_cfg(server, tmp_path, path=str(local), nsaids=[1002, 1005])
    assert load_hosts(cfg, 0, make_cosmology()).NSAID.tolist() == [1002]
    assert not server.log  # a local path downloads nothing
    cfg = hosts_cfg(server, tmp_path, path=str(local), cones=[[150.5, 2.0, 0.01]])
    assert load_hosts(cfg, 0, make_cosmology()).NSAID.tolist() == [1001]
    cfg = hosts_cfg(server, tmp_path, path=str(local), ra_range=[359.0, 155.0], max_hosts=1)
    assert load_hosts(cfg, 0, make_cosmology()).NSAID.tolist() == [1001]  # wrapping RA


def test_nsa_download_resumes_with_range(server, tmp_path, nsa_bytes, monkeypatch):
    monkeypatch.setattr(net, "DOWNLOAD_CHUNK", 512)
    server.script(NSA_PATH, R.Reply(200, nsa_bytes, {"Accept-Ranges": "bytes"},
                                    truncate=len(nsa_bytes) // 3))
    hosts = load_hosts(hosts_cfg(server, tmp_path), 0, make_cosmology())
    assert len(hosts) == 2
    reqs = server.requests_to(NSA_PATH)
    assert len(reqs) == 2 and "Range" not in reqs[0].headers
    assert reqs[1].headers["Range"].startswith("bytes=") and reqs[1].headers["Range"] != "bytes=0-"
    f = tmp_path / "nsa" / "nsa_v1_0_1.fits"
    assert f.read_bytes() == nsa_bytes and not f.with_name(f.name + ".part").exists()


def test_nsa_checksum_mismatch_and_http_error(server, tmp_path):
    with pytest.raises(ServiceError, match="checksum mismatch"):
        load_hosts(hosts_cfg(server, tmp_path, sha256="0" * 64), 0, make_cosmology())
    assert not (tmp_path / "nsa" / "nsa_v1_0_1.fits").exists()
    cfg = hosts_cfg(server, tmp_path)
    cfg["nsa"]["url"] = server.url + "/sas/missing.fits"
    with pytest.raises(ServiceError, match=r"nsa: HTTP 404.*missing.fits"):
        load_hosts(cfg, 0, make_cosmology())


# -- cutouts -------------------------------------------------------------------------------
#: the RGB cutout format of the default config (size, arcsec/pix)
RGB = (default_config()["cutouts"]["rgb_size"], default_config()["cutouts"]["rgb_pixscale"])


def client(srv, tmp_path, **kw):
    services = {"cache_dir": str(tmp_path / "cache"), "retries": 2, "backoff": 0.0,
                "timeout": 5, "legacy_viewer": {"url": srv.url + "/viewer"}, **kw}
    return LegacyCutoutClient(deep_merge(default_config()["services"], services), release="dr9")


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_fetch_fits_cube_and_wcs(server, tmp_path):
    c = client(server, tmp_path)
    cube, hdr = c.fetch_fits(150.5, 2.0, 64, 0.262)
    assert cube.dtype == np.float32 and cube.shape == (3, 64, 64)
    assert cube[1].max() > cube[0].max()  # g, r, z order kept (fixture r = 2 g)
    from astropy.wcs import WCS
    w = WCS(hdr).celestial  # the cube header has NAXIS=3
    ra, dec = w.wcs_pix2world([[31.5, 31.5]], 0)[0]
    assert abs(ra - 150.5) < 1e-6 and abs(dec - 2.0) < 1e-6
    assert abs(abs(w.wcs.cd[0, 0]) * 3600 - 0.262) < 1e-9
    req = server.requests_to("/viewer/cutout.fits")[0].args
    assert req["layer"] == "ls-dr9" and req["bands"] == "grz" and req["size"] == "64"
    # cached: no second request
    c.fetch_fits(150.5, 2.0, 64, 0.262)
    assert len(server.requests_to("/viewer/cutout.fits")) == 1


def test_fetch_jpeg(server, tmp_path):
    img = client(server, tmp_path).fetch_jpeg(150.5, 2.0, *RGB)
    assert img.dtype == np.uint8 and img.shape == (128, 128, 3)
    assert img[64, 64, 0] > img[0, 0, 0]
    req = server.requests_to("/viewer/cutout.jpg")[0].args
    assert req["pixscale"] == "0.469" and req["size"] == "128"


def test_cutout_statuses(server, tmp_path):
    c = client(server, tmp_path)
    with pytest.raises(CutoutUnavailable) as e:
        c.fetch_fits(150.5, -40.0, 32, 0.262)
    assert e.value.status == "off_footprint"
    assert c.try_fetch_jpeg(150.5, -40.0, *RGB).status == "off_footprint"
    flat = np.ones((3, 16, 16), np.float32)
    flat[0] = np.random.default_rng(0).normal(size=(16, 16))
    server.script("/viewer/cutout.fits", R.Reply(200, R.fits_cutout_bytes(1, 1, 16, 0.262, flat)))
    r = c.try_fetch_fits(1.0, 1.0, 16, 0.262)
    assert r.status == "blank" and "band r" in r.reason and r.data is None
    server.script("/viewer/cutout.fits", R.Reply(200, b"<html>no such layer</html>"))
    assert c.try_fetch_fits(2.0, 1.0, 16, 0.262).status == "corrupt"
    nan = np.full((3, 16, 16), np.nan, np.float32)
    server.script("/viewer/cutout.fits", R.Reply(200, R.fits_cutout_bytes(3, 1, 16, 0.262, nan)))
    assert c.try_fetch_fits(3.0, 1.0, 16, 0.262).status == "corrupt"
    server.script("/viewer/cutout.jpg", R.Reply(200, b"GIF89a...."))
    assert c.try_fetch_jpeg(4.0, 1.0, *RGB).status == "corrupt"
    gray = np.full((128, 128, 3), 77, np.uint8)
    server.script("/viewer/cutout.jpg", R.Reply(200, R.jpeg_bytes(gray)))
    assert c.try_fetch_jpeg(5.0, 1.0, *RGB).status == "blank"


def test_cutout_retries_truncated_and_5xx_and_validates_input(server, tmp_path):
    c = client(server, tmp_path)
    body = R.fits_cutout_bytes(6.0, 1.0, 32, 0.262)
    server.script("/viewer/cutout.fits", R.Reply(503, b"busy"), R.Reply(200, body, truncate=3000))
    cube, _ = c.fetch_fits(6.0, 1.0, 32, 0.262)
    assert cube.shape == (3, 32, 32) and len(server.requests_to("/viewer/cutout.fits")) == 3
    jb = R.jpeg_bytes(np.random.default_rng(1).integers(0, 255, (128, 128, 3)))
    server.script("/viewer/cutout.jpg", R.Reply(200, jb, truncate=len(jb) // 2))
    assert c.fetch_jpeg(7.0, 1.0, *RGB).shape == (128, 128, 3)
    for bad in [("150; rm -rf", 2.0), (float("nan"), 2.0), (150.0, 91.0)]:
        with pytest.raises(ValueError):
            c.fetch_jpeg(*bad, *RGB)
    with pytest.raises(ValueError, match="size"):
        c.fetch_fits(1.0, 1.0, 5000, 0.262)
    with pytest.raises(ValueError, match="release"):
        LegacyCutoutClient({}, release="dr9&layer=x")
    for _ in range(3):
        server.script("/viewer/cutout.jpg", R.Reply(500, b"oops"))
    with pytest.raises(ServiceError, match=r"legacy_viewer: failed after 3 attempts.*cutout.jpg"):
        c.fetch_jpeg(8.0, 1.0, *RGB)
