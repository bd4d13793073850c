"""Named, composable catalog cuts (after SAGA's ``cuts.py``; paper 001 Sec. 3.1).

A :class:`Cut` has a name, a one-line definition and one implementation per survey
(Legacy, SDSS, PS1 analogues of the same criterion). A survey without an analogue of a
criterion passes it, and the cut flow marks it ``n/a``. Every threshold comes from the
``cuts`` config section. ``cuts.yaml`` beside this file documents each cut, its columns
and units, and the per-survey mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..catalogs.geometry import valid_position
from ..catalogs.schema import PS1_QF, SDSS_FLAGS

BANDS = ("g", "r", "z")
Impl = Callable[[pd.DataFrame, dict], np.ndarray]


@dataclass(frozen=True)
class Cut:
    """A named selection criterion; ``cut(df, params)`` returns the boolean pass mask.

    Cuts compose: ``(a & b)(df, params)`` passes where both pass.
    """

    name: str
    definition: str
    impl: dict = field(default_factory=dict)  # survey -> Impl

    def applies_to(self, survey: str) -> bool:
        return survey in self.impl

    def __call__(self, df: pd.DataFrame, params: dict, survey: str | None = None) -> np.ndarray:
        survey = survey or (df["survey"].iloc[0] if len(df) else "legacy")
        if len(df) == 0:
            return np.zeros(0, dtype=bool)
        if survey not in self.impl:
            return np.ones(len(df), dtype=bool)
        with np.errstate(invalid="ignore"):
            mask = np.asarray(self.impl[survey](df, params), dtype=bool)
        return mask

    def __and__(self, other: Cut) -> Cut:
        surveys = set(self.impl) | set(other.impl)

        def both(s):
            return lambda df, p: self(df, p, s) & other(df, p, s)

        return Cut(f"{self.name}&{other.name}", f"({self.definition}) and ({other.definition})",
                   {s: both(s) for s in surveys})


def _all_bands(df, template, op):
    return np.logical_and.reduce([op(df[template.format(b=b)].to_numpy(float)) for b in BANDS])


def _any_band(df, template, op):
    return np.logical_or.reduce([op(df[template.format(b=b)].to_numpy(float)) for b in BANDS])


ALL = ("legacy", "sdss", "ps1")


def _common(f: Impl) -> dict:
    return {s: f for s in ALL}


CUTS: list[Cut] = [
    Cut("valid_position", "finite RA in [0, 360] deg and finite Dec in [-90, 90] deg "
        "(a row without one is kept, never associated with a host)",
        _common(lambda df, p: valid_position(df["ra"], df["dec"]))),
    Cut("r_max", "r <= r_max (extinction-corrected r mag)",
        _common(lambda df, p: df["mag_r"].to_numpy(float) <= p["r_max"])),
    Cut("surface_brightness",
        "mu_eff + sigma_mu - sb_slope (r - 14) > sb_min, mu_eff = r + 2.5 log10(2 pi r_eff^2)",
        _common(lambda df, p: (df["mu_eff"] + df["sigma_mu"].fillna(0)
                               - p["sb_slope"] * (df["mag_r"] - 14)).to_numpy(float)
                > p["sb_min"])),
    Cut("color", "(g - r) - sigma_gr + gr_slope (r - 14) < gr_max",
        _common(lambda df, p: (df["gr"] - df["sigma_gr"].fillna(0)
                               + p["gr_slope"] * (df["mag_r"] - 14)).to_numpy(float)
                < p["gr_max"])),
    Cut("galaxy_type", "not a point source (Legacy TYPE not PSF/DUP; SDSS type 3; PS1 extended)",
        {"legacy": lambda df, p: ~df["ls_type"].astype(str).str.strip().isin(["PSF", "DUP"]),
         "sdss": lambda df, p: df["sdss_type"].to_numpy() == 3,
         "ps1": lambda df, p: (df["ps1_rPSFMag"] - df["ps1_rKronMag"]).to_numpy(float) >= 0.05}),
    Cut("has_size", "measured r half-light radius > 0 (SHAPE_R, petroR50_r, rmomentRH)",
        _common(lambda df, p: df["r_eff"].to_numpy(float) > 0)),
    Cut("nobs", "observed in g, r and z (Legacy NOBS >= 1; SDSS/PS1: valid mags)",
        {"legacy": lambda df, p: _all_bands(df, "ls_nobs_{b}", lambda v: v >= 1),
         "sdss": lambda df, p: _all_bands(df, "sdss_petroMagErr_{b}", lambda v: v > 0),
         "ps1": lambda df, p: (df["ps1_nDetections"].to_numpy() >= 1)
         & (df["ps1_primaryDetection"].to_numpy() == 1)}),
    Cut("dered_mag_finite", "extinction-corrected g, r, z magnitudes are finite",
        _common(lambda df, p: _all_bands(df, "mag_{b}", np.isfinite))),
    Cut("allmask", "no masked pixels at the centre (Legacy ALLMASK = 0; SDSS clean, not "
        "SATURATED; PS1 GOOD_STACK and not BAD_STACK)",
        {"legacy": lambda df, p: _all_bands(df, "ls_allmask_{b}", lambda v: v == 0),
         "sdss": lambda df, p: (df["sdss_clean"].to_numpy() == 1)
         & ((df["sdss_flags"].to_numpy().astype(np.int64) & SDSS_FLAGS["SATURATED"]) == 0),
         "ps1": lambda df, p: ((df["ps1_qualityFlag"].to_numpy().astype(np.int64)
                                & PS1_QF["GOOD_STACK"]) > 0)
         & ((df["ps1_qualityFlag"].to_numpy().astype(np.int64) & PS1_QF["BAD_STACK"]) == 0)}),
    Cut("fracmasked", "FRACMASKED < fracmasked_max in g, r, z (Legacy only)",
        {"legacy": lambda df, p: _all_bands(df, "ls_fracmasked_{b}",
                                            lambda v: v < p["fracmasked_max"])}),
    Cut("fracflux", "FRACFLUX < fracflux_max in g, r, z (Legacy); SDSS: not BLENDED with "
        "NODEBLEND",
        {"legacy": lambda df, p: _all_bands(df, "ls_fracflux_{b}",
                                            lambda v: v < p["fracflux_max"]),
         "sdss": lambda df, p: (df["sdss_flags"].to_numpy().astype(np.int64)
                                & (SDSS_FLAGS["BLENDED"] | SDSS_FLAGS["NODEBLEND"]))
         != (SDSS_FLAGS["BLENDED"] | SDSS_FLAGS["NODEBLEND"])}),
    Cut("rchisq", "RCHISQ < rchisq_max in g, r, z (Legacy only)",
        {"legacy": lambda df, p: _all_bands(df, "ls_rchisq_{b}", lambda v: v < p["rchisq_max"])}),
    Cut("rchisq_any", "RCHISQ < rchisq_any_max in at least one band (Legacy only)",
        {"legacy": lambda df, p: _any_band(df, "ls_rchisq_{b}",
                                           lambda v: v < p["rchisq_any_max"])}),
    Cut("fracin_any", "FRACIN > fracin_any_min in at least one band (Legacy); SDSS: not EDGE",
        {"legacy": lambda df, p: _any_band(df, "ls_fracin_{b}",
                                           lambda v: v > p["fracin_any_min"]),
         "sdss": lambda df, p: (df["sdss_flags"].to_numpy().astype(np.int64)
                                & SDSS_FLAGS["EDGE"]) == 0}),
    Cut("mag_err", "magnitude error < mag_err_max in g, r, z",
        _common(lambda df, p: _all_bands(df, "magerr_{b}", lambda v: v < p["mag_err_max"]))),
]

#: the host-association criterion, computed by :func:`~catclean.cuts.associate_hosts`
HOST_CUT = "host_radius"


def apply_cuts(df: pd.DataFrame, params: dict, survey: str) -> pd.DataFrame:
    """Add a ``cut_<name>`` column per cut and ``passes_cuts`` (all cuts, incl. host)."""
    out = df.copy()
    for cut in CUTS:
        out[f"cut_{cut.name}"] = cut(out, params, survey)
    names = [f"cut_{c.name}" for c in CUTS]
    if f"cut_{HOST_CUT}" in out:
        names.append(f"cut_{HOST_CUT}")
    out["passes_cuts"] = out[names].all(axis=1) if len(out) else pd.Series(dtype=bool)
    first_fail = np.full(len(out), "", dtype=object)
    for name in reversed(names):
        first_fail = np.where(~out[name].to_numpy(bool), name.removeprefix("cut_"), first_fail)
    out["cut_reason"] = first_fail.astype(str)
    return out


def cutflow(df: pd.DataFrame, survey: str) -> pd.DataFrame:
    """Rows surviving each cut, cumulatively in :data:`CUTS` order then host association."""
    rows = [{"step": "input", "applies": "yes", "n_pass_alone": len(df), "n_surviving": len(df)}]
    alive = np.ones(len(df), dtype=bool)
    names = [c.name for c in CUTS] + ([HOST_CUT] if f"cut_{HOST_CUT}" in df else [])
    for name in names:
        col = df[f"cut_{name}"].to_numpy(bool)
        alive &= col
        cut = next((c for c in CUTS if c.name == name), None)
        applies = "yes" if cut is None or cut.applies_to(survey) else "n/a"
        rows.append({"step": name, "applies": applies, "n_pass_alone": int(col.sum()),
                     "n_surviving": int(alive.sum())})
    out = pd.DataFrame(rows)
    out.insert(0, "survey", survey)
    return out
