"""Issue 15, items 3-8: every bad input gives a flagged row with a reason or an error
naming the file, key or URL (docs/reliability.md lists each case and this test's id).

Table-driven: each case is one function in :data:`CASES`, run by one parametrized test.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catclean.catalogs.normalize import normalize
from catclean.catalogs.providers import get_provider
from catclean.catalogs.schema import NATIVE_COLUMNS
from catclean.config import ConfigError, deep_merge, default_config
from catclean.cosmology import make_cosmology
from catclean.cuts import apply_cuts, associate_hosts
from catclean.io import provenance

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "fixtures" / "live"))
import live_replay as R  # noqa: E402

CENTRE = (150.5, 2.0)
SQL_PATH = "/dr17/SkyServerWS/SearchTools/SqlSearch"
CUT_PARAMS = default_config()["cuts"]
COSMO = make_cosmology({"H0": 70.0, "Om0": 0.27, "Tcmb0": 0.0})


def _hpx(ra=CENTRE[0], dec=CENTRE[1], nside=32):
    from astropy import units as u
    from astropy_healpix import HEALPix

    return int(HEALPix(nside, "nested").lonlat_to_healpix(ra * u.deg, dec * u.deg))


def _cones(radius=0.2):
    return pd.DataFrame({"NSAID": [1], "RA": [CENTRE[0]], "DEC": [CENTRE[1]], "Z": [0.01],
                         "host_status": ["ok"], "radius_deg": [radius]})


def _bad_positions(native: pd.DataFrame, rac="ra", decc="dec") -> pd.DataFrame:
    native = native.copy()
    native.loc[0, rac] = np.nan
    native.loc[1, decc] = np.inf
    native.loc[2, decc] = 95.0
    return native


# ------------------------------------------------------------------ item 4: positions
def case_nan_position_normalize_cuts_association(tmp_path):
    native = _bad_positions(R.legacy_table([CENTRE], n=12))
    table = normalize(native, "legacy", "dr9", 32, hpx=_hpx())
    assert len(table) == len(native)                      # nothing lost, nothing raised
    assert (table["hpx"].iloc[:3] == _hpx()).all()
    assert table["nn_sep_arcsec"].iloc[:3].isna().all()
    table = associate_hosts(table, _cones(), 100.0, COSMO)
    assert table["host_nsaid"].iloc[:3].isna().all()      # never associated
    assert table["host_nsaid"].iloc[3:].notna().all()
    out = apply_cuts(table, CUT_PARAMS, "legacy")
    assert not out["cut_valid_position"].iloc[:3].any()
    assert out["cut_valid_position"].iloc[3:].all()
    assert (out["cut_reason"].iloc[:3] == "valid_position").all()
    assert not out["passes_cuts"].iloc[:3].any()


def case_nan_position_live_provider_keeps_row(tmp_path):
    table = _bad_positions(R.sdss_table([CENTRE], n=20))
    srv = R.ReplayServer()
    srv.route(SQL_PATH, lambda req: R.Reply(200, R.skyserver_csv(
        table[NATIVE_COLUMNS["sdss"]]), {"Content-Type": "text/plain"}))
    srv.start()
    try:
        services = deep_merge(default_config()["services"], {
            "cache_dir": str(tmp_path / "cache"), "retries": 0,
            "skyserver": {"url": srv.url + "/{release}/SkyServerWS/SearchTools/SqlSearch"}})
        p = get_provider("sdss", {"provider": "live", "release": "dr17"}, services)
        got = p.query(_cones(), _hpx(), 32)
    finally:
        srv.stop()
    bad_ids = set(table["objID"].iloc[:3])
    assert bad_ids <= set(got["objID"])                   # kept, not dropped silently
    norm = normalize(got, "sdss", "dr17", 32, hpx=_hpx())
    flagged = apply_cuts(norm, CUT_PARAMS, "sdss")
    assert (~flagged["cut_valid_position"]).sum() == 3


def case_nan_position_synthetic_provider_keeps_row(tmp_path):
    cat = _bad_positions(R.legacy_table([CENTRE], n=12))
    cat["field_nsaid"] = 1
    path = tmp_path / "1_detections.parquet"
    cat.to_parquet(path)
    p = get_provider("legacy", {"provider": "synthetic", "release": "dr9"}, {},
                     field_catalogs=[str(path)])
    got = p.query(_cones(), _hpx(), 32)
    assert set(cat["ls_id"].iloc[:3]) <= set(got["ls_id"])
    other = p.query(_cones(), _hpx() + 1, 32)             # kept once: the host's pixel only
    assert not set(cat["ls_id"].iloc[:3]) & set(other["ls_id"])


# ------------------------------------------------------------ item 5: truncated MEF
def _mef(tmp_path, nextend=True):
    from astropy.io import fits

    hdus = [fits.PrimaryHDU()]
    hdus[0].header["EXPTIME"] = 60.0
    if nextend:
        hdus[0].header["NEXTEND"] = 3
    rng = np.random.default_rng(0)
    for k in range(3):
        img = rng.normal(1000, 10, (128, 128)).astype(np.float32)
        img[40:44, 40:44] += 5000
        hdus.append(fits.ImageHDU(img, name=f"CCD{k:02d}"))
    path = tmp_path / "full.fits"
    fits.HDUList(hdus).writeto(path)
    with fits.open(path) as h:
        offsets = [x.fileinfo()["hdrLoc"] for x in h]
    return path.read_bytes(), offsets


def _process(path, n_ccd=None):
    from catclean.qa.extract import ExtractConfig, process_exposure
    from catclean.qa.grading import qa_settings

    cfg = ExtractConfig.from_dict(qa_settings(default_config())["extract"])
    ccds, _ = process_exposure(path, cfg, 0.187, n_ccd=n_ccd)
    return ccds


def case_mef_cut_after_ccd1(tmp_path):
    raw, off = _mef(tmp_path)
    p = tmp_path / "after1.fits"
    p.write_bytes(raw[:off[2]])
    ccds = _process(p)
    assert ccds["ccd"].tolist() == [0, 1, 2]
    assert ccds["status"].tolist()[1:] == ["missing", "missing"]
    assert all("after1.fits" in r and "NEXTEND" in r for r in ccds["reason"].iloc[1:])


def case_mef_cut_inside_ccd2(tmp_path):
    raw, off = _mef(tmp_path)
    p = tmp_path / "inside2.fits"
    p.write_bytes(raw[:off[2] + 2 * 2880])
    ccds = _process(p)
    assert ccds["ccd"].tolist() == [0, 1, 2]
    assert ccds["status"].tolist()[1:] == ["missing", "missing"]
    assert "unreadable" in ccds["reason"].iloc[1] and "absent" in ccds["reason"].iloc[2]


def case_mef_without_nextend_uses_the_plan(tmp_path):
    raw, off = _mef(tmp_path, nextend=False)
    p = tmp_path / "plan.fits"
    p.write_bytes(raw[:off[2]])
    ccds = _process(p, n_ccd=3)
    assert len(ccds) == 3 and (ccds["status"].iloc[1:] == "missing").all()
    assert "of the plan" in ccds["reason"].iloc[1]


# ------------------------------------------------------------- item 6: named readers
def _png(path, seed=0):
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (128, 128, 3)).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def case_truncated_image_names_the_file(tmp_path):
    from catclean.shreds.data import ImageReadError, read_rgb_image

    p = _png(tmp_path / "cut.png")
    p.write_bytes(p.read_bytes()[:2000])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_rgb_image(p)


def case_one_bad_labeled_image_is_skipped(tmp_path):
    from catclean.shreds.data import load_labeled_images

    for i in range(3):
        _png(tmp_path / f"{i}.png", i)
    bad = tmp_path / "1.png"
    bad.write_bytes(bad.read_bytes()[:2000])
    (tmp_path / "labels.csv").write_text("source_id,label\n0,galaxy\n1,shred\n2,shred\n")
    images, labels, meta = load_labeled_images(tmp_path / "labels.csv", tmp_path)
    assert images.shape[0] == 2 and labels.tolist() == [0, 1]
    assert meta["source_id"].tolist() == ["0", "2"]
    skipped = meta.attrs["skipped"]
    assert skipped["source_id"].tolist() == ["1"] and "1.png" in skipped["reason"].iloc[0]


def case_labeled_path_outside_image_dir(tmp_path):
    from catclean.shreds.data import load_labeled_images

    images = tmp_path / "images"
    images.mkdir()
    _png(images / "ok.png")
    _png(tmp_path / "x.png")                              # exists, but outside
    (tmp_path / "labels.csv").write_text("source_id,label\nok,galaxy\n../x,shred\n")
    with pytest.raises(ValueError, match=r"labels.csv row 3 \(source_id '\.\./x'\).*outside"):
        load_labeled_images(tmp_path / "labels.csv", images)


def case_truncated_cutout_shard_names_the_file(tmp_path):
    from catclean.cutouts import CutoutStore, CutoutStoreError, write_store

    ids = [f"s{i}" for i in range(4)]
    write_store(tmp_path / "rgb", ids, np.ones((4, 8, 8, 3), np.uint8), ["ok"] * 4)
    shard = tmp_path / "rgb" / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:300])
    with pytest.raises(CutoutStoreError, match="shard-00000.npy"):
        CutoutStore(tmp_path / "rgb").get(ids)


def case_truncated_shard_is_a_flagged_row_in_score_partition(tmp_path):
    from catclean.cutouts import CutoutStore, write_store
    from catclean.shreds.score import score_partition

    ids = [f"s{i}" for i in range(4)]
    write_store(tmp_path / "rgb", ids, np.ones((4, 8, 8, 3), np.uint8), ["ok"] * 4)
    shard = tmp_path / "rgb" / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:300])
    cuts = pd.DataFrame({"source_id": ids, "passes_cuts": True, "cut_reason": ""})
    out = score_partition(cuts, CutoutStore(tmp_path / "rgb"), scorer=object())
    assert out["p_shred"].isna().all()
    assert out["shreds_reason"].str.contains("shard-00000.npy").all()


def case_field_fits_missing_extension(tmp_path):
    from astropy.io import fits

    from catclean.sky.render import FieldReadError, read_field_fits

    p = tmp_path / "field.fits"
    prim = fits.PrimaryHDU()
    prim.header["SURVEY"] = "legacy"
    fits.HDUList([prim, fits.ImageHDU(np.zeros((4, 4)), name="IMAGE_G")]).writeto(p)
    with pytest.raises(FieldReadError, match=r"field.fits lacks extension 'IMAGE_R'"):
        read_field_fits(p)


# ------------------------------------------------------- item 7: credentials, deadline
SECRET_URL_PATH = "/dr17/SkyServerWS/SearchTools/SqlSearch"


def _secret_provider(srv, tmp_path, **kw):
    host = srv.url.removeprefix("http://")
    services = deep_merge(default_config()["services"], {
        "cache_dir": str(tmp_path / "cache"), "retries": 0, "timeout": 1.0,
        "skyserver": {"url": f"http://alice:s3cretpw@{host}/{{release}}/SkyServerWS/"
                             "SearchTools/SqlSearch?token=t0kenvalue&apikey=k3yvalue"}, **kw})
    return get_provider("sdss", {"provider": "live", "release": "dr17"}, services)


def case_credentials_redacted_everywhere(tmp_path, caplog):
    from catclean.net import ServiceError

    table = R.sdss_table([CENTRE], n=10)
    srv = R.ReplayServer()
    srv.route(SECRET_URL_PATH, R.skyserver_service(table))
    srv.start()
    try:
        p = _secret_provider(srv, tmp_path)
        with caplog.at_level(logging.DEBUG):
            p.query(_cones(0.05), _hpx(), 32)
            srv.script(SECRET_URL_PATH, R.Reply(403, b"forbidden"))
            with pytest.raises(ServiceError) as err:
                _secret_provider(srv, tmp_path, refetch=True).query(_cones(0.05), _hpx(), 32)
    finally:
        srv.stop()
    texts = {"error": str(err.value), "log": caplog.text,
             "provenance": json.dumps(provenance(None, **p.describe())),
             **{f.name: f.read_text() for f in (tmp_path / "cache").rglob("*.json")}}
    assert len(texts) >= 4
    for where, text in texts.items():
        for secret in ("s3cretpw", "t0kenvalue", "k3yvalue"):
            assert secret not in text, f"{secret} leaks into {where}"
    assert "***" in texts["error"]


def case_dripping_server_hits_the_total_deadline(tmp_path):
    from catclean.net import ServiceError

    srv = R.ReplayServer()
    srv.start()
    srv.script(SQL_PATH, R.Reply(200, b"#Table1\nobjID,ra\n", drip=0.25))
    try:
        host = srv.url
        services = deep_merge(default_config()["services"], {
            "cache_dir": str(tmp_path / "cache"), "retries": 0, "timeout": 1.0,
            "deadline": 1.0,
            "skyserver": {"url": host + "/{release}/SkyServerWS/SearchTools/SqlSearch"}})
        p = get_provider("sdss", {"provider": "live", "release": "dr17"}, services)
        with pytest.raises(ServiceError, match="total deadline of 1.0 s exceeded"):
            p.query(_cones(0.05), _hpx(), 32)
    finally:
        srv.stop()


# --------------------------------------------------------- items 3 and 8: config keys
@pytest.fixture
def _config_case():
    def check(overrides, key, *words):
        with pytest.raises(ConfigError) as err:
            default_config(overrides)
        msg = str(err.value)
        assert f"config key '{key}'" in msg
        for w in words:
            assert w in msg
    return check


def case_config_release_dr99(tmp_path, check):
    check({"surveys": {"sdss": {"release": "dr99"}}}, "surveys.sdss.release",
          "'dr16', 'dr17', 'dr18'")
    check({"surveys": {"legacy": {"release": "dr99", "provider": "synthetic"}}},
          "surveys.legacy.release", "'dr9', 'dr10'")


def case_synthetic_provider_rejects_unknown_release(tmp_path, check):
    with pytest.raises(ValueError, match=r"surveys.ps1.release 'dr99'.*\['dr2'\]"):
        get_provider("ps1", {"provider": "synthetic", "release": "dr99"}, {})


def case_config_run_name_dotdot(tmp_path, check):
    check({"run_name": ".."}, "run_name")


def case_config_results_dir_injection(tmp_path, check):
    check({"results_dir": "r; echo INJECTED; #"}, "results_dir")


def case_config_results_dir_space(tmp_path, check):
    check({"results_dir": "my results"}, "results_dir")


def case_shell_arguments_are_quoted(tmp_path, check):
    import re

    for smk in (TESTS.parent / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in re.findall(r"shell:\s*\n((?:\s+.+\n)+)", text):
            for field in re.findall(r"\{([^{}]+)\}", block):
                assert field.endswith(":q"), f"{smk.name}: unquoted {{{field}}} in shell"


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.removeprefix("case_") for c in CASES])
def test_bad_input(case, tmp_path, caplog, _config_case):
    import inspect

    kwargs = {"tmp_path": tmp_path, "caplog": caplog, "check": _config_case}
    case(**{k: kwargs[k] for k in inspect.signature(case).parameters})
