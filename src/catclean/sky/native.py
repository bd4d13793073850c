"""Write survey-neutral measurements in each survey's *native* catalog columns and units.

So that one normalization code path (:mod:`catclean.catalogs.normalize`) serves the
synthetic and the real services, the synthetic provider returns exactly the columns the
real services return:

- Legacy Surveys DR9 Tractor catalogues (``ls_dr9.tractor`` at NOIRLab Data Lab):
  fluxes in nanomaggies *not* corrected for extinction, ``mw_transmission_*``,
  ``flux_ivar_*`` (1/nanomaggy^2), ``shape_r`` (arcsec), ``type`` in
  {PSF, REX, EXP, DEV, SER, DUP}, quality columns ``nobs_*, allmask_*, fracmasked_*,
  fracflux_*, fracin_*, rchisq_*``;
- SDSS DR17 ``PhotoObj``: ``petroMag_*`` (asinh mags, not extinction corrected),
  ``petroMagErr_*``, ``petroR50_r`` (arcsec, PSF-convolved), ``extinction_*`` (mag),
  ``type`` (3 = GALAXY, 6 = STAR), photo ``flags`` bitmask and ``clean``;
- Pan-STARRS1 DR2 stack (MAST ``panstarrs/dr2/stack``): ``{b}KronMag, {b}KronMagErr,
  {b}PSFMag, {b}PSFMagErr`` (AB, not corrected), ``{b}KronRad`` (arcsec), ``{b}momentRH``,
  ``{b}infoFlag``, ``qualityFlag``, ``primaryDetection``, ``nDetections``. PS1 has no
  extinction column: providers add ``ebv`` (SFD E(B-V)) as the one catclean extra column.

Truth columns (``truth_*``) are appended by the synthetic provider only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..catalogs.schema import PS1_QF, SDSS_FLAGS
from .surveys import BANDS, NANOMAGGY_ZP, SURVEYS

# SDSS asinh softening parameters b (Lupton et al. 1999), per band
SDSS_B = {"g": 0.9e-10, "r": 1.2e-10, "z": 7.4e-10}


def _mag(flux):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, NANOMAGGY_ZP - 2.5 * np.log10(flux), np.nan)


def _magerr(flux, err):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 1.0857 * err / flux, np.nan)


def _legacy_type(m: pd.DataFrame) -> np.ndarray:
    snr = m.flux_r / m.flux_err_r.replace(0, np.inf)
    ratio = m.r50_obs / m.r50_psf
    t = np.where(m.conc > 2.6, "DEV", np.where(m.conc < 2.2, "EXP", "SER"))
    t = np.where(m.shape_r < 1.0, "REX", t)
    t = np.where((ratio < 1.08) | ((ratio < 1.2) & (snr < 10)), "PSF", t)
    return t


def legacy_dr9(m: pd.DataFrame, ebv: np.ndarray, brickid: int, release: int = 9010
               ) -> pd.DataFrame:
    """Legacy Surveys DR9 Tractor columns from a measurement table."""
    spec = SURVEYS["legacy"]
    n = len(m)
    objid = np.arange(n, dtype=np.int64)
    out = {
        "release": np.full(n, release, dtype=np.int16),
        "brickid": np.full(n, brickid, dtype=np.int32),
        "objid": objid.astype(np.int32),
        "ls_id": (np.int64(release) << 40) | (np.int64(brickid) << 16) | objid,
        "type": _legacy_type(m).astype(str),
        "ra": m.ra.to_numpy(), "dec": m.dec.to_numpy(), "ebv": ebv,
    }
    for b in BANDS:
        trans = 10 ** (-0.4 * spec.ext_coeff[b] * ebv)
        out[f"flux_{b}"] = m[f"flux_{b}"].to_numpy().astype(np.float32)
        with np.errstate(divide="ignore"):
            out[f"flux_ivar_{b}"] = np.where(np.isfinite(m[f"flux_err_{b}"]),
                                             1.0 / m[f"flux_err_{b}"] ** 2, 0.0).astype(np.float32)
        out[f"mw_transmission_{b}"] = trans.astype(np.float32)
        out[f"nobs_{b}"] = m[f"nobs_{b}"].to_numpy().astype(np.int16)
        out[f"allmask_{b}"] = m[f"allmask_{b}"].to_numpy().astype(np.int16)
        out[f"fracmasked_{b}"] = m[f"fracmasked_{b}"].to_numpy().astype(np.float32)
        out[f"fracflux_{b}"] = m[f"fracflux_{b}"].to_numpy().astype(np.float32)
        out[f"fracin_{b}"] = m[f"fracin_{b}"].to_numpy().astype(np.float32)
        out[f"rchisq_{b}"] = m[f"rchisq_{b}"].to_numpy().astype(np.float32)
    e = ((m.a - m.b) / (m.a + m.b)).to_numpy()
    # Tractor angles are east of north; sep theta is from +x (west, since east is left)
    pa = np.pi / 2 - m.theta.to_numpy()
    shape_r = np.where(out["type"] == "PSF", 0.0, m.shape_r.to_numpy())
    out["shape_r"] = shape_r.astype(np.float32)
    out["shape_r_ivar"] = np.where(shape_r > 0, 1.0 / (0.1 * shape_r + 0.05) ** 2,
                                   0.0).astype(np.float32)
    out["shape_e1"] = np.where(shape_r > 0, e * np.cos(2 * pa), 0.0).astype(np.float32)
    out["shape_e2"] = np.where(shape_r > 0, e * np.sin(2 * pa), 0.0).astype(np.float32)
    out["sersic"] = np.select([out["type"] == "DEV", out["type"] == "SER"],
                              [4.0, np.clip(m.conc.to_numpy() - 0.8, 0.5, 6)], 1.0
                              ).astype(np.float32)
    out["sersic"] = np.where(out["type"] == "PSF", 0.0, out["sersic"]).astype(np.float32)
    return pd.DataFrame(out)


def sdss_dr17(m: pd.DataFrame, ebv: np.ndarray, field_id: int) -> pd.DataFrame:
    """SDSS DR17 PhotoObj columns from a measurement table."""
    spec = SURVEYS["sdss"]
    n = len(m)
    # objID bit layout: skyVersion, rerun, run, camcol, firstField, field, id
    run, rerun, camcol = 3000 + field_id % 4000, 301, 1 + field_id % 6
    fld = 11 + (field_id // 7) % 800
    ids = np.arange(1, n + 1, dtype=np.int64)
    objid = (np.int64(1) << 59) | (np.int64(rerun) << 48) | (np.int64(run) << 32) \
        | (np.int64(camcol) << 29) | (np.int64(fld) << 16) | ids
    out = {"objID": objid, "ra": m.ra.to_numpy(), "dec": m.dec.to_numpy(),
           "run": np.full(n, run, np.int16), "rerun": np.full(n, rerun, np.int16),
           "camcol": np.full(n, camcol, np.int8), "field": np.full(n, fld, np.int16)}
    ratio = (m.r50_obs / m.r50_psf).to_numpy()
    snr = (m.flux_r / m.flux_err_r.replace(0, np.inf)).to_numpy()
    out["type"] = np.where((ratio < 1.1) | ((ratio < 1.25) & (snr < 8)), 6, 3).astype(np.int16)
    for b in BANDS:
        f = m[f"flux_{b}"].to_numpy() * 1e-9  # maggies
        e = m[f"flux_err_{b}"].to_numpy() * 1e-9
        bb = SDSS_B[b]
        with np.errstate(invalid="ignore", divide="ignore"):
            asinh_mag = -2.5 / np.log(10) * (np.arcsinh(f / (2 * bb)) + np.log(bb))
            err = 2.5 / np.log(10) * e / (2 * bb) / np.sqrt(1 + (f / (2 * bb)) ** 2)
        ok = np.isfinite(e) & (m[f"nobs_{b}"].to_numpy() > 0)
        out[f"petroMag_{b}"] = np.where(ok, asinh_mag, -9999.0).astype(np.float32)
        out[f"petroMagErr_{b}"] = np.where(ok, err, -9999.0).astype(np.float32)
        out[f"extinction_{b}"] = (spec.ext_coeff[b] * ebv).astype(np.float32)
    out["petroR50_r"] = m.r50_obs.to_numpy().astype(np.float32)
    flags = np.full(n, SDSS_FLAGS["BINNED1"], dtype=np.int64)
    flags |= np.where(m.deblended.to_numpy(), SDSS_FLAGS["CHILD"] | SDSS_FLAGS["BLENDED"], 0)
    flags |= np.where((m.fracin_r < 0.98).to_numpy(), SDSS_FLAGS["EDGE"], 0)
    flags |= np.where((m.allmask_r & 2).to_numpy() > 0, SDSS_FLAGS["SATURATED"], 0)
    out["flags"] = flags
    out["clean"] = ((flags & (SDSS_FLAGS["EDGE"] | SDSS_FLAGS["SATURATED"])) == 0).astype(np.int16)
    return pd.DataFrame(out)


def ps1_dr2(m: pd.DataFrame, ebv: np.ndarray, field_id: int) -> pd.DataFrame:
    """Pan-STARRS1 DR2 stack columns from a measurement table (plus ``ebv``)."""
    n = len(m)
    # objID = zone/ra-based identifier in PS1; here a stable synthetic equivalent
    zone = np.floor((m.dec.to_numpy() + 90.0) / (1.0 / 120.0)).astype(np.int64)
    ra_part = np.floor(m.ra.to_numpy() * 1e6).astype(np.int64)
    out = {"objID": zone * 10**11 + (ra_part % 10**10) * 10 + np.arange(n) % 10,
           "raStack": m.ra.to_numpy(), "decStack": m.dec.to_numpy(),
           "primaryDetection": np.ones(n, np.int16),
           "nDetections": (m.nobs_g + m.nobs_r + m.nobs_z).to_numpy().astype(np.int16) * 3}
    for b in BANDS:
        f, e = m[f"flux_{b}"].to_numpy(), m[f"flux_err_{b}"].to_numpy()
        ok = m[f"nobs_{b}"].to_numpy() > 0
        kron = _mag(f)
        # PSF photometry of extended sources misses the wings: scale by the PSF / source
        # light within the PSF core (~ (r50_psf / r50_obs)^2 for resolved sources)
        core = np.clip((m.r50_psf / m.r50_obs).to_numpy() ** 2, 0.02, 1.0)
        out[f"{b}KronMag"] = np.where(ok, kron, -999.0).astype(np.float32)
        out[f"{b}KronMagErr"] = np.where(ok, _magerr(f, e), -999.0).astype(np.float32)
        out[f"{b}PSFMag"] = np.where(ok, _mag(f * core), -999.0).astype(np.float32)
        out[f"{b}PSFMagErr"] = np.where(ok, _magerr(f * core, e), -999.0).astype(np.float32)
        out[f"{b}KronRad"] = (2.5 * m.r50_obs.to_numpy()).astype(np.float32)
        out[f"{b}momentRH"] = m.r50_obs.to_numpy().astype(np.float32)
        out[f"{b}infoFlag"] = np.where(m[f"allmask_{b}"].to_numpy() > 0, 0x1000, 0).astype(np.int64)
    qf = np.full(n, PS1_QF["GOOD"] | PS1_QF["GOOD_STACK"] | PS1_QF["BEST_STACK"], np.int16)
    qf = qf | np.where((out["rPSFMag"] - out["rKronMag"]) > 0.05, PS1_QF["EXT"], 0).astype(np.int16)
    bad = (m.fracin_r < 0.9).to_numpy() | (m.allmask_r > 0).to_numpy()
    qf = np.where(bad, (qf & ~PS1_QF["GOOD_STACK"]) | PS1_QF["BAD_STACK"], qf).astype(np.int16)
    out["qualityFlag"] = qf
    out["ebv"] = ebv
    return pd.DataFrame(out)


WRITERS = {"legacy": legacy_dr9, "sdss": sdss_dr17, "ps1": ps1_dr2}
