"""Native survey columns -> the common schema (:mod:`.schema`).

One function per survey; the same code serves synthetic and live data because the
synthetic provider writes the real native columns. Magnitudes are extinction-corrected
AB; sizes are r-band half-light radii in arcsec.

Survey mappings (documented also in ``src/catclean/cuts/cuts.yaml``):

========= ============================== ============================ =========================
quantity  Legacy DR9 (Tractor)           SDSS DR17 (PhotoObj)         PS1 DR2 (stack)
========= ============================== ============================ =========================
mag_b     22.5 - 2.5 log10(flux_b /      petroMag_b - extinction_b    bKronMag - R_b E(B-V)
          mw_transmission_b)
r_eff     shape_r                        petroR50_r                   rmomentRH
point src type == PSF                    type == 6 (STAR)             rPSFMag - rKronMag < 0.05
E(B-V)    ebv                            extinction_r / 2.285         ebv (added by provider)
========= ============================== ============================ =========================
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .geometry import position_reason, valid_position
from .schema import BANDS, NATIVE_COLUMNS, PREFIX

LN10 = np.log(10.0)
log = logging.getLogger(__name__)
PS1_R = {"g": 3.172, "r": 2.271, "z": 1.217}  # Schlafly & Finkbeiner 2011, PS1 filters
SDSS_R_r = 2.285


def _mag_from_flux(flux):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(flux), np.nan)


def _flux_from_mag(mag):
    return np.where(np.isfinite(mag), 10 ** (-0.4 * (mag - 22.5)), np.nan)


def _flux_from_catalog_mag(mag, err, extinction):
    """Extinction-corrected flux (nmgy) and inverse variance from catalog magnitudes.

    Placeholder values (SDSS -9999, PS1 -999), negative errors and NaN give NaN flux and
    zero inverse variance; the row is kept.
    """
    raw, err = np.asarray(mag, float), np.asarray(err, float)
    bad = (raw < -100) | (err < 0) | ~np.isfinite(raw)
    flux = _flux_from_mag(np.where(bad, np.nan, raw - np.asarray(extinction, float)))
    sig = flux * np.where(bad, np.nan, err) / 1.0857
    with np.errstate(divide="ignore", invalid="ignore"):
        return flux, np.where(sig > 0, 1 / sig**2, 0.0)


def _legacy(df: pd.DataFrame) -> dict:
    out = {"native_id": df["ls_id"].astype("int64").astype(str),
           "ra": df["ra"], "dec": df["dec"], "ebv": df["ebv"],
           "morph_type": df["type"].astype(str),
           "is_point_source": df["type"].astype(str).str.strip() == "PSF",
           "r_eff": df["shape_r"].astype(float),
           "r_eff_err": np.where(df["shape_r_ivar"] > 0, 1 / np.sqrt(df["shape_r_ivar"]),
                                 np.nan),
           "fracflux_r": df["fracflux_r"].astype(float)}
    for b in BANDS:
        trans = df[f"mw_transmission_{b}"].to_numpy(float)
        flux = df[f"flux_{b}"].to_numpy(float) / trans
        ivar = df[f"flux_ivar_{b}"].to_numpy(float) * trans**2
        out[f"flux_{b}"], out[f"flux_ivar_{b}"] = flux, ivar
    return out


def _sdss(df: pd.DataFrame) -> dict:
    out = {"native_id": df["objID"].astype("int64").astype(str),
           "ra": df["ra"], "dec": df["dec"],
           "ebv": df["extinction_r"].astype(float) / SDSS_R_r,
           "morph_type": np.where(df["type"] == 6, "STAR", np.where(df["type"] == 3, "GALAXY",
                                                                     "OTHER")),
           "is_point_source": df["type"] == 6,
           "r_eff": df["petroR50_r"].astype(float), "r_eff_err": np.nan,
           "fracflux_r": np.nan}
    for b in BANDS:
        out[f"flux_{b}"], out[f"flux_ivar_{b}"] = _flux_from_catalog_mag(
            df[f"petroMag_{b}"], df[f"petroMagErr_{b}"], df[f"extinction_{b}"])
    return out


def _ps1(df: pd.DataFrame) -> dict:
    ebv = df["ebv"].astype(float) if "ebv" in df else pd.Series(0.0, index=df.index)
    psf_minus_kron = df["rPSFMag"].astype(float) - df["rKronMag"].astype(float)
    out = {"native_id": df["objID"].astype("int64").astype(str),
           "ra": df["raStack"], "dec": df["decStack"], "ebv": ebv,
           "morph_type": np.where(psf_minus_kron < 0.05, "PSF", "EXTENDED"),
           "is_point_source": psf_minus_kron < 0.05,
           "r_eff": df["rmomentRH"].astype(float), "r_eff_err": np.nan,
           "fracflux_r": np.nan}
    # live PS1 has no dust map offline: ebv NaN -> no correction (ebv stays NaN = flag)
    ebv_corr = np.nan_to_num(ebv.to_numpy(float), nan=0.0)
    for b in BANDS:
        out[f"flux_{b}"], out[f"flux_ivar_{b}"] = _flux_from_catalog_mag(
            df[f"{b}KronMag"], df[f"{b}KronMagErr"], PS1_R[b] * ebv_corr)
    return out


MAPPERS = {"legacy": _legacy, "sdss": _sdss, "ps1": _ps1}


def nearest_neighbours(ra, dec, flux_r) -> tuple[np.ndarray, np.ndarray]:
    """Separation (arcsec) to the nearest other source and its r-flux ratio to ours.

    Only rows with a valid position (:func:`~.geometry.valid_position`) take part; the
    others get NaN for both and are never anyone's neighbour.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord, match_coordinates_sky

    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    n = len(ra)
    sep_out, ratio_out = np.full(n, np.nan), np.full(n, np.nan)
    good = np.flatnonzero(valid_position(ra, dec))
    if len(good) < 2:
        return sep_out, ratio_out
    c = SkyCoord(ra[good] * u.deg, dec[good] * u.deg)
    idx, sep, _ = match_coordinates_sky(c, c, nthneighbor=2)
    f = np.asarray(flux_r, float)[good]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_out[good] = np.where(f > 0, f[idx] / f, np.nan)
    sep_out[good] = sep.arcsec
    return sep_out, ratio_out


def normalize(native: pd.DataFrame, survey: str, release: str, nside: int,
              hpx: int = -1) -> pd.DataFrame:
    """Map a native catalog of ``survey`` to the common schema.

    Parameters
    ----------
    native : pandas.DataFrame
        The survey's native columns (see :data:`~catclean.catalogs.schema.NATIVE_COLUMNS`),
        optionally with ``truth_*`` columns.
    survey, release : str
    nside : int
        HEALPix nside of the partitioning (nested).
    hpx : int
        The partition being normalized: the ``hpx`` of rows without a valid position
        (NaN, infinite or out-of-range RA/Dec), which have no pixel of their own. Such
        rows are kept (``cut_valid_position`` flags them later) and get NaN neighbour
        columns; they never raise.

    Returns
    -------
    pandas.DataFrame
        Common columns followed by the prefixed native columns; one row per input row, in
        input order.
    """
    from astropy import units as u
    from astropy_healpix import HEALPix

    if survey not in MAPPERS:
        raise ValueError(f"unknown survey {survey!r}; known: {sorted(MAPPERS)}")
    missing = [c for c in NATIVE_COLUMNS[survey] if c not in native.columns]
    if missing and len(native) == 0:  # an empty query result: an empty partition
        native = native.reindex(columns=[*native.columns, *missing])
        missing = []
    if missing:
        raise ValueError(f"{survey} catalog lacks native columns {missing}")
    native = native.reset_index(drop=True)
    m = MAPPERS[survey](native)
    out = pd.DataFrame({k: (v.to_numpy() if isinstance(v, pd.Series) else v)
                        for k, v in m.items()}, index=native.index)
    for b in BANDS:
        flux, ivar = out[f"flux_{b}"].to_numpy(float), out[f"flux_ivar_{b}"].to_numpy(float)
        out[f"mag_{b}"] = _mag_from_flux(flux)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"magerr_{b}"] = np.where((flux > 0) & (ivar > 0),
                                          1.0857 / (flux * np.sqrt(ivar)), np.nan)
    r, re = out["mag_r"].to_numpy(float), out["r_eff"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mu_eff"] = np.where(re > 0, r + 2.5 * np.log10(2 * np.pi * re**2), np.nan)
        re_err = out["r_eff_err"].to_numpy(float)
        re_term = np.where(np.isfinite(re_err) & (re > 0), 5 / LN10 * re_err / re, 0.0)
    out["sigma_mu"] = np.sqrt(out["magerr_r"] ** 2 + re_term**2)
    out["gr"] = out["mag_g"] - out["mag_r"]
    out["sigma_gr"] = np.sqrt(out["magerr_g"] ** 2 + out["magerr_r"] ** 2)
    out = out.drop(columns=["r_eff_err"])
    out.insert(0, "source_id", [f"{survey}:{release}:{i}" for i in out["native_id"]])
    out.insert(1, "survey", survey)
    out.insert(2, "release", release)
    hp = HEALPix(nside=nside, order="nested")
    ra, dec = out["ra"].to_numpy(float), out["dec"].to_numpy(float)
    valid = valid_position(ra, dec)
    pix = np.full(len(out), int(hpx), dtype="int64")
    if valid.any():
        pix[valid] = hp.lonlat_to_healpix(ra[valid] * u.deg, dec[valid] * u.deg)
    out["hpx"] = pix
    if not valid.all():
        why = position_reason(ra, dec)
        bad = np.flatnonzero(~valid)
        log.warning(
            "%s %s: %d row(s) without a valid position kept for cut_valid_position "
            "(e.g. %s: %s)", survey, release, len(bad), out["source_id"].iloc[bad[0]],
            why[bad[0]])
    out["nn_sep_arcsec"], out["nn_flux_ratio"] = nearest_neighbours(
        out["ra"], out["dec"], out["flux_r"])
    for col, dtype in (("truth_label", "str"), ("truth_id", "Int64"), ("truth_kind", "str"),
                       ("truth_frac", "float64"), ("field_nsaid", "Int64")):
        out[col] = native[col].astype(dtype) if col in native else pd.Series(
            np.nan if dtype == "float64" else pd.NA, index=out.index,
            dtype="string" if dtype == "str" else dtype)
    out["is_point_source"] = out["is_point_source"].astype(bool)
    out["morph_type"] = out["morph_type"].astype(str)
    if out["source_id"].duplicated().any():
        dup = out.loc[out["source_id"].duplicated(), "source_id"].iloc[0]
        raise ValueError(f"{survey} catalog has duplicate object ids (e.g. {dup})")
    prefixed = native[NATIVE_COLUMNS[survey]].add_prefix(PREFIX[survey])
    from .schema import COMMON_COLUMNS

    return pd.concat([out[COMMON_COLUMNS], prefixed], axis=1)
