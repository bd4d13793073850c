"""Cutout stage: viewer RGB mapping, synthetic resampling, quality flags, stores, live
provider (bounded pool, cache, resume) against a fake client."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catclean.catalogs.services.legacy_viewer import LegacyCutoutClient
from catclean.config import deep_merge, default_config
from catclean.cutouts import CutoutStore
from catclean.cutouts.build import CutoutSpec, LiveCutouts, SyntheticCutouts, build_partition
from catclean.cutouts.quality import classify
from catclean.cutouts.rgb import legacy_rgb, to_uint8
from catclean.cutouts.synthetic import FieldCutter, box_weights

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
import live_replay as R  # noqa: E402


def test_legacy_rgb_background_and_colours():
    zero = np.zeros((8, 8), np.float32)
    rgb = to_uint8(legacy_rgb([zero, zero, zero]))
    # empty sky: offset m=0.03 through the arcsinh stretch -> grey ~32/255 in every plane
    assert rgb.shape == (8, 8, 3)
    assert np.all(rgb == rgb[0, 0, 0]) and 28 <= rgb[0, 0, 0] <= 36
    red = to_uint8(legacy_rgb([zero, zero, zero + 0.5]))  # z only -> red plane (R = z)
    assert red[0, 0, 0] > 200 and red[0, 0, 2] < red[0, 0, 0] / 2
    blue = to_uint8(legacy_rgb([zero + 0.5, zero, zero]))  # g only -> blue plane
    assert blue[0, 0, 2] > 200 and blue[0, 0, 0] < blue[0, 0, 2] / 2


def test_box_weights_conserve_flux():
    w = box_weights(0.469 / 0.262)
    assert len(w) == 3 and np.isclose(w.sum(), 1.0) and w[1] > w[0] == w[2]


def test_classify_statuses():
    ok = np.random.default_rng(0).integers(0, 255, (16, 16, 3)).astype(np.uint8)
    assert classify(ok, (16, 16, 3), 1.0)[0] == "ok"
    assert classify(np.zeros((16, 16, 3), np.uint8), (16, 16, 3), 1.0)[0] == "blank"
    assert classify(ok, (16, 16, 3), 0.2)[0] == "off_footprint"
    assert classify(ok[:8], (16, 16, 3), 1.0)[0] == "corrupt"
    nan = np.ones((16, 16, 3), np.float32)
    nan[3, 3, 1] = np.nan
    assert classify(nan, (16, 16, 3))[0] == "corrupt"
    assert classify(None, (16, 16, 3))[0] == "missing"
    cube = np.zeros((16, 16, 3), np.float32)
    cube[:4] = 1.0  # data over a quarter of the stamp only
    assert classify(cube, (16, 16, 3))[0] == "off_footprint"


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    from catclean.sky.fields import host_field
    from catclean.sky.hosts import synthetic_hosts
    from catclean.sky.render import write_field_fits

    hosts = synthetic_hosts(2, (150, 151), (1, 2), (0.02, 0.03), (10.4, 10.8), seed=3)
    nsaid = int(hosts.NSAID.iloc[0])
    fld, cat = host_field(hosts, nsaid, "legacy", 3, 100.0, None,
                          {"field_max_pix": 420, "background_density": 20000})
    path = tmp_path_factory.mktemp("fields") / f"{nsaid}.fits"
    write_field_fits(fld, path)
    return fld, cat, path, nsaid


def test_field_cutter_formats_and_flux(field):
    fld, cat, _, _ = field
    cut = FieldCutter(fld)
    ra, dec = fld.meta["center_ra"], fld.meta["center_dec"]
    rgb, cover = cut.rgb(ra, dec)
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8 and cover > 0.9
    cube, cc = cut.cube(ra, dec, 64)
    assert cube.shape == (64, 64, 3) and cube.dtype == np.float32 and cc > 0.9
    # the cube is the field itself (no resampling): same r-band flux in the stamp
    ny, nx = fld.shape
    r = fld.images["r"][ny // 2 - 32:ny // 2 + 32, nx // 2 - 32:nx // 2 + 32]
    assert np.isclose(cube[..., 1].sum(), r.sum(), rtol=0.05)
    # the host is at the centre: the centre of the RGB stamp is bright
    assert rgb[60:68, 60:68].mean() > rgb[:10, :10].mean() + 30
    # far outside the field: no data
    _, cover_off = cut.rgb(ra + 1.0, dec)
    assert cover_off == 0.0


def test_build_partition_synthetic(field, tmp_path):
    fld, cat, path, nsaid = field
    ra0, dec0 = fld.meta["center_ra"], fld.meta["center_dec"]
    table = pd.DataFrame({
        "source_id": ["s:1", "s:2", "s:3", "s:4"],
        "ra": [ra0, ra0 + 0.5, ra0, ra0],
        "dec": [dec0, dec0, dec0, dec0],
        "field_nsaid": [nsaid, nsaid, 999, np.nan],
    })
    spec = CutoutSpec.from_config({**default_config()["cutouts"], "grz_size": 32})
    prov = SyntheticCutouts({nsaid: path}, spec)
    st = build_partition(table, prov, spec, tmp_path / "rgb", tmp_path / "grz")
    assert st.rgb_status.tolist() == ["ok", "off_footprint", "missing", "missing"]
    assert st.grz_status.tolist()[:2] == ["ok", "off_footprint"]
    rgb = CutoutStore(tmp_path / "rgb")
    grz = CutoutStore(tmp_path / "grz")
    assert len(rgb) == 4 and rgb.shape == (128, 128, 3) and grz.shape == (32, 32, 3)
    assert rgb.meta["pixscale"] == 0.469 and grz.meta["pixscale"] == 0.262
    imgs, status = rgb.get(["s:2", "s:1", "unknown"])
    assert status.tolist() == ["off_footprint", "ok", "missing"]
    assert imgs[0].max() == 0 and imgs[1].max() > 0  # flagged rows are zero placeholders
    cubes, _ = grz.get(["s:1"])
    assert cubes[0, 16, 16, 1] > 0  # channel 1 = r, nanomaggies, host at the centre


class FaultyViewer:
    """Legacy viewer routes with faults by position, counting concurrent requests."""

    def __init__(self, kind):
        self.kind, self.base = kind, R.viewer_service(kind)
        self.active = self.max_active = 0
        self.lock = threading.Lock()

    def __call__(self, req):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.01)
            ra, dec, size = float(req.args["ra"]), float(req.args["dec"]), int(req.args["size"])
            if ra > 99:
                return R.Reply(503, b"HTTP 503 from viewer")
            if self.kind == "jpg" and 50 < ra < 60:  # truncated image
                img = np.random.default_rng(1).integers(20, 90, (size // 2, size, 3))
                return R.Reply(200, R.jpeg_bytes(img))
            if self.kind == "fits" and (40 < ra < 50 or 60 < ra < 70):
                cube = np.random.default_rng(1).normal(0, 0.01, (3, size, size))
                if 40 < ra < 50:
                    cube[1, :5, :5] = np.nan
                else:
                    cube[:] = 0.0  # no data: off the footprint
                return R.Reply(200, R.fits_cutout_bytes(ra, dec, size, 0.262, cube))
            return self.base(req)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def viewer():
    srv = R.ReplayServer()
    routes = {"jpg": FaultyViewer("jpg"), "fits": FaultyViewer("fits")}
    for kind, handler in routes.items():
        srv.route(f"/viewer/cutout.{kind}", handler)
    srv.start()
    srv.handlers = routes
    yield srv
    srv.stop()


def live_cutouts(srv, tmp_path, spec):
    services = deep_merge(default_config()["services"], {
        "cache_dir": str(tmp_path / "cache"), "retries": 0, "backoff": 0.0, "timeout": 5,
        "legacy_viewer": {"url": srv.url + "/viewer", "concurrency": 3}})
    return LiveCutouts(LegacyCutoutClient(services, release="dr9"), spec)


def test_live_provider_flags_and_resumes(viewer, tmp_path):
    table = pd.DataFrame({"source_id": [f"x:{i}" for i in range(8)],
                          "ra": [10.0, 11.0, 45.0, 55.0, 65.0, 120.0, 12.0, 13.0],
                          "dec": [1.0] * 8})
    spec = CutoutSpec.from_config({**default_config()["cutouts"], "grz_size": 16})
    prov = live_cutouts(viewer, tmp_path, spec)
    st = build_partition(table, prov, spec, tmp_path / "rgb", tmp_path / "grz")
    assert st.rgb_status.tolist() == ["ok", "ok", "ok", "corrupt", "ok", "missing", "ok", "ok"]
    assert st.grz_status.tolist() == ["ok", "ok", "corrupt", "ok", "off_footprint", "missing",
                                      "ok", "ok"]
    assert "503" in st.rgb_reason[5] and "shape (64, 128, 3)" in st.rgb_reason[3]
    # bounded pool: the fetcher's (services.legacy_viewer.concurrency)
    assert max(h.max_active for h in viewer.handlers.values()) <= 3
    assert prov.client.fetcher.stats == {"fetched": 14, "from_cache": 0}
    # a second (resumed) run refetches only what failed (the 503 source), from the
    # fetcher's one cache
    n = len(viewer.log)
    prov2 = live_cutouts(viewer, tmp_path, spec)
    st2 = build_partition(table, prov2, spec, tmp_path / "rgb", tmp_path / "grz")
    assert len(viewer.log) - n == 2 and prov2.client.fetcher.stats["from_cache"] == 14
    assert st2.rgb_status.tolist() == st.rgb_status.tolist()
    # a corrupt cache file (killed mid-write elsewhere) is refetched, not fatal
    victim = next((tmp_path / "cache" / "legacy_viewer" / "dr9").glob("*.jpg"))
    victim.write_bytes(b"\xff\xd8 garbage")
    n = len(viewer.log)
    st3 = build_partition(table, live_cutouts(viewer, tmp_path, spec), spec,
                          tmp_path / "rgb", tmp_path / "grz")
    assert len(viewer.log) - n == 3 and st3.rgb_status.tolist() == st.rgb_status.tolist()
