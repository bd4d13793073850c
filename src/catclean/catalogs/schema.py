"""The common catalog schema every survey is normalized to, and each survey's native
columns that catclean keeps.

Common columns (units in :data:`COMMON_UNITS`)::

    source_id      str     "<survey>:<release>:<native id>", stable across reruns
    survey         str     legacy | sdss | ps1
    release        str     dr9, dr17, dr2, ...
    native_id      str     the survey's own object id
    ra, dec        deg     ICRS
    hpx            int64   HEALPix (nested) pixel at the configured nside
    is_point_source bool   the survey's own star/galaxy separation says point source
    morph_type     str     the survey's morphological type (PSF/REX/EXP/..., GALAXY/STAR)
    ebv            mag     Galactic E(B-V) used for the extinction correction
    flux_<b>       nmgy    extinction-corrected flux, b in g, r, z
    flux_ivar_<b>  nmgy^-2 its inverse variance
    mag_<b>        mag     extinction-corrected AB magnitude (NaN without a positive flux)
    magerr_<b>     mag     1-sigma error
    r_eff          arcsec  r-band half-light radius
    mu_eff         mag/arcsec^2  r + 2.5 log10(2 pi r_eff^2) (paper 001 Sec. 3.1)
    sigma_mu       mag/arcsec^2  error on mu_eff
    gr, sigma_gr   mag     extinction-corrected g - r and its error
    fracflux_r     --      flux fraction from neighbours (Legacy FRACFLUX; NaN elsewhere)
    nn_sep_arcsec  arcsec  separation to the nearest other source of the same catalog
    nn_flux_ratio  --      that neighbour's r flux over ours
    truth_*                synthetic truth (null for live data)

Native columns are kept with a survey prefix (``ls_``, ``sdss_``, ``ps1_``) so that one
Parquet dataset holds all surveys with a single schema.
"""

from __future__ import annotations

BANDS = ("g", "r", "z")

COMMON_COLUMNS = [
    "source_id", "survey", "release", "native_id", "ra", "dec", "hpx",
    "is_point_source", "morph_type", "ebv",
    *[f"{p}_{b}" for b in BANDS for p in ("flux", "flux_ivar", "mag", "magerr")],
    "r_eff", "mu_eff", "sigma_mu", "gr", "sigma_gr", "fracflux_r",
    "nn_sep_arcsec", "nn_flux_ratio",
    "truth_label", "truth_id", "truth_kind", "truth_frac", "field_nsaid",
]

COMMON_UNITS = {
    "ra": "deg", "dec": "deg", "ebv": "mag", "r_eff": "arcsec",
    "mu_eff": "mag / arcsec2", "sigma_mu": "mag / arcsec2", "gr": "mag", "sigma_gr": "mag",
    "nn_sep_arcsec": "arcsec",
    **{f"flux_{b}": "nanomaggy" for b in BANDS},
    **{f"flux_ivar_{b}": "1 / nanomaggy2" for b in BANDS},
    **{f"mag_{b}": "mag" for b in BANDS},
    **{f"magerr_{b}": "mag" for b in BANDS},
}

PREFIX = {"legacy": "ls_", "sdss": "sdss_", "ps1": "ps1_"}

#: the data releases catclean knows for each survey: the live services' tables/endpoints
#: (Data Lab ``ls_dr9/10.tractor``, SkyServer DR16-18, MAST PS1 DR2) and the synthetic
#: sky's native columns. ``catclean.config.validate_config`` rejects any other
#: ``surveys.<s>.release`` before a job runs; the providers check it again.
RELEASES = {"legacy": ("dr9", "dr10"), "sdss": ("dr16", "dr17", "dr18"), "ps1": ("dr2",)}

#: native position columns (deg) and native object id of each survey
POSITION_COLUMNS = {"legacy": ("ra", "dec"), "sdss": ("ra", "dec"),
                    "ps1": ("raStack", "decStack")}
ID_COLUMN = {"legacy": "ls_id", "sdss": "objID", "ps1": "objID"}

#: SDSS photo ``flags`` bits (https://www.sdss4.org/dr17/algorithms/photo_flags/)
SDSS_FLAGS = {"EDGE": 0x4, "BLENDED": 0x8, "CHILD": 0x10, "NODEBLEND": 0x40,
              "NOPETRO": 0x100, "SATURATED": 0x40000, "BINNED1": 0x10000000,
              "DEBLEND_NOPEAK": 0x400000000000}
#: PS1 ``qualityFlag`` bits (https://outerspace.stsci.edu/display/PANSTARRS/PS1+Object+Flags)
PS1_QF = {"EXT": 1, "EXT_ALT": 2, "GOOD": 4, "GOOD_ALT": 8, "GOOD_STACK": 16,
          "BEST_STACK": 32, "SUSPECT_STACK": 64, "BAD_STACK": 128}

NATIVE_COLUMNS = {
    "legacy": ["release", "brickid", "objid", "ls_id", "type", "ra", "dec", "ebv",
               *[f"{c}_{b}" for b in BANDS for c in (
                   "flux", "flux_ivar", "mw_transmission", "nobs", "allmask", "fracmasked",
                   "fracflux", "fracin", "rchisq")],
               "shape_r", "shape_r_ivar", "shape_e1", "shape_e2", "sersic"],
    "sdss": ["objID", "ra", "dec", "run", "rerun", "camcol", "field", "type",
             *[f"{c}_{b}" for b in BANDS for c in ("petroMag", "petroMagErr", "extinction")],
             "petroR50_r", "flags", "clean"],
    "ps1": ["objID", "raStack", "decStack", "primaryDetection", "nDetections",
            *[f"{b}{c}" for b in BANDS for c in ("KronMag", "KronMagErr", "PSFMag",
                                                 "PSFMagErr", "KronRad", "momentRH",
                                                 "infoFlag")],
            "qualityFlag", "ebv"],
}

#: units of native columns (astropy unit strings), prefixed names
NATIVE_UNITS = {
    **{f"ls_{c}": "deg" for c in ("ra", "dec")}, "ls_ebv": "mag", "ls_shape_r": "arcsec",
    **{f"ls_flux_{b}": "nanomaggy" for b in BANDS},
    **{f"ls_flux_ivar_{b}": "1 / nanomaggy2" for b in BANDS},
    **{f"sdss_{c}": "deg" for c in ("ra", "dec")}, "sdss_petroR50_r": "arcsec",
    **{f"sdss_{c}_{b}": "mag" for b in BANDS for c in ("petroMag", "petroMagErr",
                                                         "extinction")},
    "ps1_raStack": "deg", "ps1_decStack": "deg", "ps1_ebv": "mag",
    **{f"ps1_{b}{c}": "mag" for b in BANDS for c in ("KronMag", "KronMagErr", "PSFMag",
                                                        "PSFMagErr")},
    **{f"ps1_{b}{c}": "arcsec" for b in BANDS for c in ("KronRad", "momentRH")},
}


def native_prefixed(survey: str) -> list[str]:
    """The prefixed native column names of ``survey`` as they appear in the catalog."""
    return [PREFIX[survey] + c for c in NATIVE_COLUMNS[survey]]


def all_native_prefixed() -> list[str]:
    return [c for s in NATIVE_COLUMNS for c in native_prefixed(s)]


#: integer-valued native columns (stored as nullable Int64 in the catalog)
_NATIVE_INT = {
    "legacy": {"release", "brickid", "objid", "ls_id", *[f"{c}_{b}" for b in BANDS
                                                         for c in ("nobs", "allmask")]},
    "sdss": {"objID", "run", "rerun", "camcol", "field", "type", "flags", "clean"},
    "ps1": {"objID", "primaryDetection", "nDetections", "qualityFlag",
            *[f"{b}infoFlag" for b in BANDS]},
}
_NATIVE_STR = {"legacy": {"type"}, "sdss": set(), "ps1": set()}


def native_dtypes() -> dict[str, str]:
    """pandas dtype of every prefixed native column (one schema for all surveys)."""
    out = {}
    for survey, cols in NATIVE_COLUMNS.items():
        for c in cols:
            dtype = ("Int64" if c in _NATIVE_INT[survey]
                     else "string" if c in _NATIVE_STR[survey] else "float64")
            out[PREFIX[survey] + c] = dtype
    return out


COMMON_DTYPES = {
    "source_id": "string", "survey": "string", "release": "string", "native_id": "string",
    "hpx": "int64", "is_point_source": "boolean", "morph_type": "string",
    "truth_label": "string", "truth_id": "Int64", "truth_kind": "string",
    "field_nsaid": "Int64",
}
