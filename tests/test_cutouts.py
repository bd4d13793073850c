"""Cutout stage: viewer RGB mapping, synthetic resampling, quality flags, stores, live
provider (bounded pool, cache, resume) against a fake client."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from catclean.cutouts import CutoutStore
from catclean.cutouts.build import CutoutSpec, LiveCutouts, SyntheticCutouts, build_partition
from catclean.cutouts.quality import classify
from catclean.cutouts.rgb import legacy_rgb, to_uint8
from catclean.cutouts.synthetic import FieldCutter, box_weights


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
    spec = CutoutSpec(grz_size=32)
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


class FakeClient:
    """Stands in for catclean.cutouts.legacy_client (fetch_jpeg / fetch_fits)."""

    def __init__(self):
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def _enter(self):
        with self.lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def _exit(self):
        with self.lock:
            self.active -= 1

    def fetch_jpeg(self, ra, dec, size=128, pixscale=0.469):
        self._enter()
        try:
            import time

            time.sleep(0.01)
            if ra > 99:
                raise ConnectionError("HTTP 503 from viewer")
            if 50 < ra < 60:
                return np.zeros((size // 2, size, 3), np.uint8)  # truncated image
            rng = np.random.default_rng(int(ra * 1000))
            return rng.integers(20, 90, (size, size, 3)).astype(np.uint8)
        finally:
            self._exit()

    def fetch_fits(self, ra, dec, size, pixscale):
        self._enter()
        try:
            if ra > 99:
                raise TimeoutError("timed out")
            cube = np.random.default_rng(1).normal(0, 0.01, (3, size, size)).astype(np.float32)
            if 40 < ra < 50:
                cube[1, :5, :5] = np.nan
            if 60 < ra < 70:
                cube[:] = 0.0  # no data: off the footprint
            return cube, {}
        finally:
            self._exit()


def test_live_provider_flags_and_resumes(tmp_path):
    table = pd.DataFrame({"source_id": [f"x:{i}" for i in range(8)],
                          "ra": [10.0, 11.0, 45.0, 55.0, 65.0, 120.0, 12.0, 13.0],
                          "dec": [1.0] * 8})
    spec = CutoutSpec(grz_size=16)
    client = FakeClient()
    prov = LiveCutouts(tmp_path / "cache", spec, workers=3, client=client)
    st = build_partition(table, prov, spec, tmp_path / "rgb", tmp_path / "grz")
    assert st.rgb_status.tolist() == ["ok", "ok", "ok", "corrupt", "ok", "missing", "ok", "ok"]
    assert st.grz_status.tolist() == ["ok", "ok", "corrupt", "ok", "off_footprint", "missing",
                                      "ok", "ok"]
    assert "503" in st.rgb_reason[5] and "wrong shape" in st.rgb_reason[3]
    assert client.max_active <= 3  # bounded pool
    # a second (resumed) run refetches only what failed (the 503/timeout source)
    client2 = FakeClient()
    prov2 = LiveCutouts(tmp_path / "cache", spec, workers=3, client=client2)
    st2 = build_partition(table, prov2, spec, tmp_path / "rgb", tmp_path / "grz")
    assert client2.calls == 2 and prov2.n_cached == 14
    assert st2.rgb_status.tolist() == st.rgb_status.tolist()
    # a truncated cache file (killed mid-write elsewhere) is refetched, not fatal
    victim = next((tmp_path / "cache" / "rgb").glob("*.npy"))
    victim.write_bytes(b"\x93NUMPY garbage")
    client3 = FakeClient()
    st3 = build_partition(table, LiveCutouts(tmp_path / "cache", spec, 2, client3), spec,
                          tmp_path / "rgb", tmp_path / "grz")
    assert client3.calls == 3 and st3.rgb_status.tolist() == st.rgb_status.tolist()
