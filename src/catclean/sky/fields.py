"""One synthetic host field, end to end: scene -> render -> detect -> native catalog."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .detect import measure_field, truth_labels
from .hosts import make_cosmology
from .native import WRITERS
from .render import Field, ebv_map, render_field
from .scene import scene
from .surveys import SURVEYS

log = logging.getLogger(__name__)

#: truth columns the synthetic provider appends to native catalogs
TRUTH_COLUMNS = ["truth_label", "truth_id", "truth_kind", "truth_frac", "field_nsaid"]


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
    """
    sky = sky or {}
    det = sky.get("detection", {})
    cosmo = make_cosmology(cosmology)
    row = hosts.loc[hosts.NSAID == nsaid]
    if row.empty:
        raise KeyError(f"host NSAID {nsaid} is not in the hosts table")
    row = row.iloc[0]
    if not np.isfinite(row.Z):
        raise ValueError(f"host NSAID {nsaid} has no valid redshift (Z={row.Z}); "
                         "it cannot be rendered")
    spec = SURVEYS[survey]
    half = field_half_side(row.Z, radius_kpc, cosmo, sky.get("field_margin", 1.1),
                           sky.get("field_max_pix", 2048))
    npix = int(2 * half / spec.pixscale)
    ddec = half / 3600.0
    dra = ddec / np.cos(np.radians(row.DEC))
    truth = scene(hosts, row.RA - dra, row.RA + dra, row.DEC - ddec, row.DEC + ddec, seed,
                  radius_kpc, cosmo, sky.get("background_density", 12000),
                  sky.get("star_density", 3000), tuple(sky.get("satellites_per_host", (2, 6))))
    fld = render_field(truth, row.RA, row.DEC, npix, spec, seed, field_key=int(nsaid),
                       realism=sky.get("realism"))
    meas = measure_field(fld, thresh=det.get("thresh", 1.5), minarea=det.get("minarea", 5),
                         deblend_nthresh=det.get("deblend_nthresh", 64),
                         deblend_cont=det.get("deblend_cont", 0.0003),
                         filter_fwhm=det.get("filter_fwhm", 2.0), gain=spec.gain)
    labels = truth_labels(meas, fld)
    ebv = ebv_map(meas.ra.to_numpy(), meas.dec.to_numpy()) if len(meas) else np.zeros(0)
    writer = WRITERS[survey]
    native = writer(meas, ebv, int(nsaid))
    native = pd.concat([native.reset_index(drop=True), labels.reset_index(drop=True)], axis=1)
    native["field_nsaid"] = np.int64(nsaid)
    log.info("field %s/%s: %d px, %d truth objects, %d detections (%s)", survey, nsaid, npix,
             len(truth), len(native), native.truth_label.value_counts().to_dict())
    return fld, native
