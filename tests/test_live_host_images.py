"""Live host images of the morphology stage (issue 12 point 4, live path): rule
``fetch_host_images`` fetches every host's Legacy viewer ``cutout.jpg`` at the morphology
field size and pixel scale through the one Fetcher, ``segment_hosts`` segments them.
Against the local replay server (127.0.0.1, JPEG bytes as the viewer sends them); no
network."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catclean.config import deep_merge, default_config
from catclean.morphology import host_images, stage

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
import live_replay as R  # noqa: E402

MORPH = default_config()["morphology"]
SIZE, PIX = MORPH["field_size"], MORPH["pixscale"]  # 256 px at 0.396127"/pix
C = (SIZE - 1) / 2
NE = 20  # px: the fixture's marker, 20 px north and 20 px east of the centre
FAIL_RA = 151.0
SECRET = "s3cret"


def viewer_jpeg(req: R.Req) -> R.Reply:
    """cutout.jpg: HTTP 500 at RA 151 (a failing URL), zeros south of -30 (off footprint),
    else a galaxy at the centre and a red marker NE of it, drawn as the viewer draws the sky
    (north up: smaller row; east left: smaller column)."""
    a = req.args
    ra, dec, size = float(a["ra"]), float(a["dec"]), int(a["size"])
    if abs(ra - FAIL_RA) < 1e-9:
        return R.Reply(500, b"internal error")
    if dec < -30:
        return R.Reply(200, R.jpeg_bytes(np.zeros((size, size, 3))), {"Content-Type": "image/jpeg"})
    y, x = np.mgrid[:size, :size]
    c = (size - 1) / 2
    g = 200 * np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * (size / 16) ** 2))
    img = np.stack([g, 0.8 * g, 0.6 * g], -1) + 10
    spot = np.exp(-((x - (c - NE)) ** 2 + (y - (c - NE)) ** 2) / 4.0)
    img[..., 0] += 240 * spot
    return R.Reply(200, R.jpeg_bytes(img.clip(0, 255)), {"Content-Type": "image/jpeg"})


@pytest.fixture
def server():
    srv = R.ReplayServer()
    srv.route("/viewer/cutout.jpg", viewer_jpeg)
    srv.start()
    yield srv
    srv.stop()


def services(srv, tmp_path):
    # credentials in the URL: they must reach no log, error or file
    url = srv.url.replace("http://", f"http://user:{SECRET}@") + "/viewer"
    return deep_merge(default_config()["services"], {
        "cache_dir": str(tmp_path / "cache"), "retries": 1, "backoff": 0.0, "timeout": 5,
        "legacy_viewer": {"url": url, "concurrency": 2}})


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from catclean.morphology.config import preset
    from catclean.morphology.network import build_model

    keras.utils.set_random_seed(0)  # untrained, but the same weights every run
    return build_model(preset("tiny", image_size=64))


def test_fetch_cache_and_segment_live_host_images(server, tmp_path, tiny_model, caplog):
    hosts = pd.DataFrame({"NSAID": [11, 12, 13, 14],
                          "RA": [150.5, FAIL_RA, 150.5, np.nan],
                          "DEC": [2.0, 2.0, -40.0, 2.0]})
    hosts.to_parquet(tmp_path / "hosts.parquet")
    svc = services(server, tmp_path)
    got = host_images.fetch(tmp_path / "hosts.parquet", svc, "dr9", size=SIZE, pixscale=PIX,
                            out_path=tmp_path / "images.npz")

    # the request: the morphology stage's field size and SDSS pixel scale, the dr9 layer
    req = [r.args for r in server.requests_to("/viewer/cutout.jpg") if r.args["dec"] == "2"
           and r.args["ra"] == "150.5"]
    assert len(req) == 1
    assert (req[0]["size"], req[0]["pixscale"], req[0]["layer"]) == ("256", "0.396127", "ls-dr9")
    # the failing URL was tried 1 + retries times; the NaN position never left the process
    assert len([r for r in server.requests_to("/viewer/cutout.jpg")
                if r.args["ra"] == "151"]) == 2
    assert len(server.log) == 4

    back = host_images.read_host_images(tmp_path / "images.npz")
    assert back["ok"].tolist() == [True, False, False, False]
    assert back["reason"].tolist() == ["", "image_fetch_failed", "image_off_footprint",
                                       "image_bad_position"]
    err = back["error"][1]
    assert "cutout.jpg" in err and "ra=151" in err and "status=500" in err
    assert SECRET not in "".join(back["error"]) + caplog.text

    # units and orientation as trained: uint8 RGB, north up, east left. A sky position
    # 20 px north and 20 px east of the host lands, by stage.host_pixels (the catalog's
    # convention), on the viewer's marker.
    img = back["images"][0]
    assert img.dtype == np.uint8 and img.shape == (SIZE, SIZE, 3)
    d = NE * PIX / 3600
    xy = stage.host_pixels([150.5 + d / np.cos(np.radians(2.0))], [2.0 + d], 150.5, 2.0,
                           SIZE, PIX)[0]
    red = img[..., 0].astype(int) - img[..., 2].astype(int)
    peak = np.unravel_index(np.argmax(red), red.shape)  # (row, col)
    assert np.allclose(xy, [C - NE, C - NE], atol=0.6)
    assert abs(peak[1] - xy[0]) <= 1 and abs(peak[0] - xy[1]) <= 1
    assert img[int(C), int(C), 1] > 150 > img[0, -1, 1]  # the galaxy at the centre

    # cached: a rerun asks the service only for the failed host again
    n_before = len(server.log)
    again = host_images.fetch(tmp_path / "hosts.parquet", svc, "dr9", size=SIZE, pixscale=PIX,
                              out_path=tmp_path / "images2.npz")
    assert len(server.log) - n_before == 2  # host 12's two attempts, nothing else
    assert np.array_equal(again["images"], got["images"])
    assert list((tmp_path / "cache" / "legacy_viewer" / "dr9").glob("*.jpg"))

    # segmented: every host has a row; fetch failures are flagged with the URL
    t = stage.segment(tmp_path / "hosts.parquet", {}, None, size=SIZE, pixscale=PIX,
                      min_score=MORPH["min_score"], batch_size=4,
                      table_path=tmp_path / "t.parquet", masks_path=tmp_path / "m.npz",
                      images_path=tmp_path / "images.npz", model=tiny_model)
    t = pd.read_parquet(tmp_path / "t.parquet")
    assert t["NSAID"].tolist() == [11, 12, 13, 14]
    reasons = t["morphology_reason"].tolist()
    assert reasons[1:] == ["image_fetch_failed", "image_off_footprint", "image_bad_position"]
    # the fetched host went through the (untrained) network: measured or flagged by it,
    # not for want of an image
    assert reasons[0] is pd.NA or reasons[0] in {"no_detection", "no_host_at_centre"}
    assert pd.isna(t["image_error"][0]) and "cutout.jpg" in t["image_error"][1]
    assert t["image_error"].str.contains(SECRET).sum() == 0
    seg = stage.read_segmentation(tmp_path / "m.npz")
    assert np.array_equal(seg["images"][0], img)  # what was segmented is the fetched JPEG
    assert not seg["host_masks"][1:].any()

    # and the catalog rows of a source of each host
    cuts = pd.DataFrame({"source_id": ["a", "b"], "ra": [150.5, FAIL_RA], "dec": [2.0, 2.0],
                         "host_nsaid": [11, 12]})
    cuts.to_parquet(tmp_path / "cuts.parquet")
    out = stage.catalog_columns(tmp_path / "cuts.parquet", tmp_path / "t.parquet",
                                tmp_path / "m.npz")
    assert out["morphology_reason"][1] == "host_image_fetch_failed"
    assert pd.isna(out["in_host_mask"][1])


def test_cli_fetch_images_calls_the_rule_function(server, tmp_path):
    """``catclean morphology fetch-images``: the rule's function with the resolved config."""
    from catclean.cli import main

    pd.DataFrame({"NSAID": [21], "RA": [150.5], "DEC": [2.0]}).to_parquet(
        tmp_path / "hosts.parquet")
    assert main(["morphology", "fetch-images", "--hosts", str(tmp_path / "hosts.parquet"),
                 "--out", str(tmp_path / "out"),
                 "--set", f"services.legacy_viewer.url={server.url}/viewer",
                 "--set", f"services.cache_dir={tmp_path / 'cache'}",
                 "--set", "morphology.field_size=64"]) == 0
    got = host_images.read_host_images(tmp_path / "out" / "images.npz")
    assert got["ok"].tolist() == [True] and got["images"].shape == (1, 64, 64, 3)
    assert server.requests_to("/viewer/cutout.jpg")[0].args["size"] == "64"
