"""Normalization of native survey columns, partition plan, providers, assembly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from catclean.assemble import RowBalanceError, assemble_survey, join_stage_columns
from catclean.catalogs import normalize
from catclean.catalogs.partition import host_cones, partition_plan
from catclean.catalogs.schema import NATIVE_COLUMNS
from catclean.catalogs.synthetic import SyntheticProvider
from catclean.cosmology import make_cosmology
from catclean.cuts import apply_cuts, associate_hosts
from catclean.io import read_metadata, read_parquet, write_parquet

COSMO = make_cosmology({"H0": 70, "Om0": 0.27})


def legacy_native(n=3, ra0=150.0):
    d = {"release": [9010] * n, "brickid": [7] * n, "objid": list(range(n)),
         "ls_id": [(9010 << 40) | (7 << 16) | i for i in range(n)],
         "type": ["EXP", "PSF", "SER"][:n], "ra": ra0 + 0.001 * np.arange(n),
         "dec": [1.0] * n, "ebv": [0.05] * n, "shape_r": [2.0, 0.0, 1.0][:n],
         "shape_r_ivar": [100.0] * n, "shape_e1": [0.0] * n, "shape_e2": [0.0] * n,
         "sersic": [1.0] * n}
    for b, t in zip("grz", (0.85, 0.9, 0.94)):
        d.update({f"flux_{b}": [10.0, 1.0, -0.5][:n], f"flux_ivar_{b}": [100.0] * n,
                  f"mw_transmission_{b}": [t] * n, f"nobs_{b}": [3] * n,
                  f"allmask_{b}": [0] * n, f"fracmasked_{b}": [0.0] * n,
                  f"fracflux_{b}": [0.1] * n, f"fracin_{b}": [1.0] * n,
                  f"rchisq_{b}": [1.0] * n})
    return pd.DataFrame(d)


def test_legacy_normalization_corrects_extinction():
    out = normalize(legacy_native(), "legacy", "dr9", 32)
    # flux 10 nmgy / transmission 0.9 in r -> 22.5 - 2.5 log10(11.11)
    assert out["mag_r"].iloc[0] == pytest.approx(22.5 - 2.5 * np.log10(10 / 0.9))
    assert out["magerr_r"].iloc[0] == pytest.approx(1.0857 / (10 / 0.9 * np.sqrt(100 * 0.81)))
    assert np.isnan(out["mag_r"].iloc[2])  # negative flux -> no magnitude, row kept
    assert out["mu_eff"].iloc[0] == pytest.approx(
        out["mag_r"].iloc[0] + 2.5 * np.log10(2 * np.pi * 4.0))
    assert out["is_point_source"].tolist() == [False, True, False]
    assert out["source_id"].iloc[0] == f"legacy:dr9:{(9010 << 40) | (7 << 16)}"
    assert "ls_rchisq_r" in out.columns and len(out) == 3


def test_sdss_placeholders_become_nan():
    native = {c: [0.0, 0.0] for c in NATIVE_COLUMNS["sdss"]}
    native.update(objID=[1, 2], ra=[150.0, 150.01], dec=[1.0, 1.0], type=[3, 6],
                  petroMag_g=[19.0, -9999.0], petroMagErr_g=[0.02, -9999.0],
                  petroMag_r=[18.5, 17.0], petroMagErr_r=[0.02, 0.01],
                  petroMag_z=[18.0, 16.5], petroMagErr_z=[0.05, 0.01],
                  extinction_r=[0.1, 0.1], petroR50_r=[2.5, 1.0])
    out = normalize(pd.DataFrame(native), "sdss", "dr17", 32)
    assert out["mag_r"].iloc[0] == pytest.approx(18.4)
    assert out["ebv"].iloc[0] == pytest.approx(0.1 / 2.285)
    assert np.isnan(out["mag_g"].iloc[1])
    assert out["is_point_source"].tolist() == [False, True]


def test_missing_native_column_is_named():
    with pytest.raises(ValueError, match="rchisq_g"):
        normalize(legacy_native().drop(columns=["rchisq_g"]), "legacy", "dr9", 32)


def test_duplicate_ids_are_refused():
    nat = pd.concat([legacy_native(2), legacy_native(2)], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate"):
        normalize(nat, "legacy", "dr9", 32)


def test_empty_result_gives_an_empty_partition(tmp_path):
    empty = normalize(pd.DataFrame(), "ps1", "dr2", 32)
    assert len(empty) == 0 and "mag_r" in empty.columns
    hosts = host_cones(pd.DataFrame({"NSAID": [1], "RA": [150.0], "DEC": [1.0],
                                     "Z": [0.03]}), 100.0, COSMO)
    cut = apply_cuts(associate_hosts(empty, hosts, 100.0, COSMO),
                     {"r_max": 21, "sb_min": 18.5, "sb_slope": 0.7, "gr_max": 0.9,
                      "gr_slope": 0.06, "mag_err_max": 0.2, "fracmasked_max": 0.35,
                      "fracflux_max": 4, "rchisq_max": 10, "rchisq_any_max": 4,
                      "fracin_any_min": 0.7}, "ps1")
    path = tmp_path / "cuts" / "hpx=123.parquet"
    write_parquet(cut, path)
    flow = assemble_survey([str(path)], {}, tmp_path / "catalog" / "survey=ps1", "ps1", "dr2",
                           {"seed": 1})
    part = tmp_path / "catalog" / "survey=ps1" / "hpx=123" / "part-0.parquet"
    assert part.exists() and pq.read_metadata(part).num_rows == 0
    assert flow["n_surviving"].tolist() == [0] * len(flow) and flow["step"].iloc[0] == "input"


def test_partition_plan_flags_bad_hosts():
    hosts = pd.DataFrame({"NSAID": [1, 2, 3], "RA": [150.0, 151.0, 152.0],
                          "DEC": [1.0, 1.0, 95.0], "Z": [0.03, np.nan, 0.02]})
    cones = host_cones(hosts, 100.0, COSMO)
    assert cones["host_status"].tolist() == ["ok", "flagged", "flagged"]
    assert "NaN" in cones["host_reason"].iloc[1]
    assert len(cones) == 3  # flagged hosts are kept
    plan = partition_plan(cones, 32)
    assert plan["partitions"] and all(v == [1] for v in plan["fields"].values())


def test_synthetic_provider_keeps_unique_area(tmp_path):
    # two overlapping fields see the same source; only the nearer host's field keeps it
    hosts = host_cones(pd.DataFrame({"NSAID": [1, 2], "RA": [150.0, 150.02],
                                     "DEC": [1.0, 1.0], "Z": [0.03, 0.03]}), 100.0, COSMO)
    paths = []
    for nsaid in (1, 2):
        cat = legacy_native(3, ra0=150.004)
        cat["field_nsaid"] = nsaid
        cat["truth_label"] = "galaxy"
        p = tmp_path / f"{nsaid}.parquet"
        write_parquet(cat, p)
        paths.append(str(p))
    plan = partition_plan(hosts, 32)
    hpx = plan["partitions"][0]
    rows = SyntheticProvider("legacy", "dr9", paths).query(hosts, hpx, 32)
    assert len(rows) == 3 and (rows["field_nsaid"] == 1).all()


def test_row_balance_is_enforced():
    base = pd.DataFrame({"source_id": ["a", "b"]})
    with pytest.raises(RowBalanceError, match="missing"):
        join_stage_columns(base, {"shreds": pd.DataFrame({"source_id": ["a"], "p": [0.1]})},
                           "x")
    ok = join_stage_columns(base, {"s": pd.DataFrame({"source_id": ["b", "a"],
                                                      "p": [0.2, 0.1]})}, "x")
    assert ok["p"].tolist() == [0.1, 0.2]
    # an empty partition: its stage table read back with a float64 source_id still joins
    # (found at x16 hosts by bench_scaling: pandas refused to merge float64 with str)
    empty = pd.DataFrame({"source_id": pd.Series([], dtype="string")})
    stage = pd.DataFrame({"source_id": pd.Series([], dtype="float64"), "p": []})
    joined = join_stage_columns(empty, {"shreds": stage}, "x")
    assert len(joined) == 0 and list(joined.columns) == ["source_id", "p"]


def test_missing_input_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        read_parquet(tmp_path / "nope.parquet")


def test_provenance_and_units_in_metadata(tmp_path):
    p = tmp_path / "x.parquet"
    write_parquet(pd.DataFrame({"ra": [1.0]}), p, units={"ra": "deg"}, prov={"seed": 3})
    meta = read_metadata(p)
    assert meta["units"] == {"ra": "deg"} and meta["provenance"]["seed"] == 3
    assert "written_utc" in meta["wallclock"]
    assert pq.read_schema(p).field("ra").metadata[b"unit"] == b"deg"
