"""One synthetic host field, end to end: scene -> render -> detect -> native catalog."""

from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd

from ..config import SCHEMA_PATH, _load_yaml
from ..cosmology import make_cosmology
from .detect import measure_field, truth_labels
from .native import WRITERS
from .render import Field, ebv_map, realism_options, render_field
from .scene import SATELLITE_LOG_MASS, scene
from .surveys import SURVEYS

log = logging.getLogger(__name__)

#: truth columns the synthetic provider appends to native catalogs
TRUTH_COLUMNS = ["truth_label", "truth_id", "truth_kind", "truth_frac", "field_nsaid"]


@functools.cache
def sky_defaults() -> dict:
    """The ``sky`` section's schema defaults (``workflow/schemas/sky.schema.yaml``)."""
    props = _load_yaml(SCHEMA_PATH.parent / "sky.schema.yaml")["properties"]
    out = {k: v["default"] for k, v in props.items() if k != "detection"}
    out["detection"] = {k: v["default"] for k, v in props["detection"]["properties"].items()}
    return out


def field_half_side(z: float, radius_kpc: float, cosmo, margin: float,
                    max_pix: int) -> float:
    """Half side of a host field in arcsec: ``margin`` x the association radius at the
    host distance, capped at ``max_pix``/2 Legacy pixels (0.262")."""
    kpc_per_arcsec = cosmo.kpc_proper_per_arcmin(z).value / 60.0
    return float(min(margin * radius_kpc / kpc_per_arcsec, 0.5 * max_pix * 0.262))


def host_field(hosts: pd.DataFrame, nsaid: int, survey: str, seed: int, radius_kpc: float,
               cosmology: dict | None = None, sky: dict | None = None
               ) -> tuple[Field, pd.DataFrame]:
    """Render and catalog the field of host ``nsaid`` as seen by ``survey``.

    Returns
    -------
    field : Field
        The rendered images (for cutouts).
    catalog : pandas.DataFrame
        The survey's native columns plus :data:`TRUTH_COLUMNS`.

    ``sky`` is the ``sky`` config section; keys it lacks take the schema defaults.
    """
    sky = {**sky_defaults(), **(sky or {})}
    det = {**sky_defaults()["detection"], **sky["detection"]}
    cosmo = make_cosmology(cosmology)
    row = hosts.loc[hosts.NSAID == nsaid]
    if row.empty:
        raise KeyError(f"host NSAID {nsaid} is not in the hosts table")
    row = row.iloc[0]
    if not np.isfinite(row.Z):
        raise ValueError(f"host NSAID {nsaid} has no valid redshift (Z={row.Z}); "
                         "it cannot be rendered")
    spec = SURVEYS[survey]
    half = field_half_side(row.Z, radius_kpc, cosmo, sky["field_margin"], sky["field_max_pix"])
    npix = int(2 * half / spec.pixscale)
    ddec = half / 3600.0
    dra = ddec / np.cos(np.radians(row.DEC))
    ropt = realism_options(sky["realism"])
    truth = scene(hosts, row.RA - dra, row.RA + dra, row.DEC - ddec, row.DEC + ddec, seed,
                  radius_kpc, cosmo,
                  sky["background_density"] * ropt.get("background_density_scale", 1.0),
                  sky["star_density"] * ropt.get("star_density_scale", 1.0),
                  tuple(sky["satellites_per_host"]),
                  tuple(ropt.get("satellite_log_mass_range", SATELLITE_LOG_MASS)))
    fld = render_field(truth, row.RA, row.DEC, npix, spec, seed, field_key=int(nsaid),
                       realism=sky["realism"])
    meas = measure_field(fld, thresh=det["thresh"], minarea=det["minarea"],
                         deblend_nthresh=det["deblend_nthresh"],
                         deblend_cont=det["deblend_cont"], filter_fwhm=det["filter_fwhm"],
                         gain=spec.gain)
    labels = truth_labels(meas, fld)
    ebv = ebv_map(meas.ra.to_numpy(), meas.dec.to_numpy()) if len(meas) else np.zeros(0)
    writer = WRITERS[survey]
    native = writer(meas, ebv, int(nsaid))
    native = pd.concat([native.reset_index(drop=True), labels.reset_index(drop=True)], axis=1)
    native["field_nsaid"] = np.int64(nsaid)
    log.info("field %s/%s: %d px, %d truth objects, %d detections (%s)", survey, nsaid, npix,
             len(truth), len(native), native.truth_label.value_counts().to_dict())
    return fld, native
