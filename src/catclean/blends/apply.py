"""Deblended r-band photometry for catalog sources marked as blended.

Blend rule (documented in docs/blends.md; thresholds in ``blends.apply``)
--------------------------------------------------------------------------
A source is *blended* when either

- ``fracflux``: the survey's ``fracflux_r`` (Legacy Tractor: profile-weighted fraction of
  the flux from other sources, divided by the source's flux) exceeds ``fracflux_min``
  (NaN, as in surveys without the column, never triggers); or
- ``neighbour``: its nearest catalog neighbour lies within ``nn_sep_reff_max`` effective
  radii (``nn_sep_arcsec <= nn_sep_reff_max * max(r_eff, r_eff_floor)``), inside the
  network's stamp (``nn_sep_arcsec <= stamp / 2 * pixel_scale``) and within the training
  domain of paper 002's pairs, ``|2.5 log10(nn_flux_ratio)| < nn_dmag_max`` (2 mag).

``blend_rule`` records which rule fired (``fracflux``, ``neighbour``, ``fracflux+neighbour``).

Photometry
----------
For blended sources, channel r (index 1) of the grz flux-cube cutout (nanomaggies at
0.262"/pix) is centre-cropped or zero-padded to the network stamp and fed to the chosen
model, which scales it internally exactly as the training stamps (they are simulated in
nanomaggies, zero point 22.5). The source sits at the cutout centre, so it is the
network's *central* galaxy: ``blend_flux_r_<model>`` is the central flux and
``blend_flux_r_companion_<model>`` the neighbour's.

Nulls and reasons (``blends_reason``)
-------------------------------------
``not_blended``, ``cutout_<status>`` (cutout not ``ok``), ``nan_pixels`` (NaN / inf in
the r stamp), ``empty_stamp`` (no positive signal), ``pixscale_mismatch``,
``model_nonpositive`` (network output not a positive finite flux). ``blends_reason`` is
null where the deblended flux was computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import flux_to_mag

PIXSCALE_KEYS = ("pixscale", "pixel_scale", "pixel_scale_arcsec", "pixscale_arcsec")


def blend_selection(df: pd.DataFrame, stamp: int, pixel_scale: float,
                    cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """Apply the blend rule to a cut table; returns ``(is_blended, blend_rule)``.

    ``cfg`` is the ``blends.apply`` config section. Missing columns are treated as NaN
    (the rule that needs them never fires).
    """
    n = len(df)

    def col(name):
        if name in df:
            return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float,
                                                                     na_value=np.nan)
        return np.full(n, np.nan)

    ff = col("fracflux_r")
    nn_sep, ratio, reff = col("nn_sep_arcsec"), col("nn_flux_ratio"), col("r_eff")
    with np.errstate(invalid="ignore", divide="ignore"):
        by_ff = ff > cfg["fracflux_min"]
        reff_eff = np.fmax(reff, cfg["r_eff_floor"])
        dmag = np.abs(2.5 * np.log10(np.where(ratio > 0, ratio, np.nan)))
        by_nn = ((nn_sep <= cfg["nn_sep_reff_max"] * reff_eff)
                 & (nn_sep <= stamp / 2 * pixel_scale)
                 & (dmag < cfg["nn_dmag_max"]))
    by_ff = np.asarray(by_ff, bool)
    by_nn = np.asarray(by_nn, bool)
    rule = np.where(by_ff & by_nn, "fracflux+neighbour",
                    np.where(by_ff, "fracflux", np.where(by_nn, "neighbour", "")))
    return by_ff | by_nn, rule


def prepare_stamps(cubes: np.ndarray, stamp: int, channel: int = 1
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Centre-crop / zero-pad one band of (n, H, W, C) cutouts to (n, stamp, stamp).

    Returns ``(stamps, reason)`` where ``reason`` is ``""`` for usable stamps,
    ``nan_pixels`` or ``empty_stamp`` otherwise (those stamps are zeroed).
    """
    cubes = np.asarray(cubes)
    if cubes.ndim == 3:
        cubes = cubes[..., None]
        channel = 0
    n, h, w = cubes.shape[:3]
    img = cubes[..., channel].astype(np.float32)
    out = np.zeros((n, stamp, stamp), dtype=np.float32)

    def spans(size):
        if size >= stamp:
            o = (size - stamp) // 2
            return slice(o, o + stamp), slice(0, stamp)
        o = (stamp - size) // 2
        return slice(0, size), slice(o, o + size)

    (sy, dy), (sx, dx) = spans(h), spans(w)
    out[:, dy, dx] = img[:, sy, sx]
    reason = np.full(n, "", dtype=object)
    bad_nan = ~np.isfinite(out).all(axis=(1, 2))
    reason[bad_nan] = "nan_pixels"
    with np.errstate(invalid="ignore"):
        total = np.nansum(np.where(np.isfinite(out), out, 0.0), axis=(1, 2))
        peak = np.nanmax(np.where(np.isfinite(out), out, -np.inf), axis=(1, 2))
    empty = ~bad_nan & ((total <= 0) | ~(peak > 0))
    reason[empty] = "empty_stamp"
    out[bad_nan | empty] = 0.0
    return out, reason


def store_pixscale(meta: dict) -> float | None:
    """Pixel scale (arcsec/pix) recorded in a cutout store's metadata, if any."""
    for k in PIXSCALE_KEYS:
        if k in meta and meta[k] is not None:
            return float(meta[k])
    return None


def deblend_partition(cuts: pd.DataFrame, store, model, model_name: str,
                      pixel_scale: float, cfg: dict, predict=None) -> pd.DataFrame:
    """Deblended fluxes for one catalog partition.

    Parameters
    ----------
    cuts : DataFrame
        Cut table with ``source_id`` and the quality columns of the blend rule.
    store : CutoutStore or None
        grz flux-cube store (nanomaggies); ``None`` flags every blended source
        ``cutout_missing``.
    model : keras.Model or None
        Flux model (blend2flux or blend2mask2flux). Its input size is the stamp size.
    model_name : str
        Used in the column names.
    pixel_scale : float
        arcsec/pix the model was trained at (the preset's ``sim.pixel_scale``).
    cfg : dict
        The ``blends.apply`` config section (blend rule thresholds, ``batch_size``).
    predict : callable, optional
        ``predict(model, stamps) -> (n, 2)`` fluxes; default
        :func:`catclean.blends.models.predict_flux`.

    Returns
    -------
    DataFrame, one row per source: ``source_id``, ``is_blended``, ``blend_rule``,
    ``blend_flux_r_<model>``, ``blend_mag_r_<model>``, ``blend_flux_r_companion_<model>``,
    ``blends_reason``.
    """
    n = len(cuts)
    stamp = int(model.input_shape[1]) if model is not None else 64
    is_bl, rule = blend_selection(cuts, stamp, pixel_scale, cfg)
    reason = np.where(is_bl, "", "not_blended").astype(object)
    flux = np.full(n, np.nan)
    flux_comp = np.full(n, np.nan)
    sel = np.flatnonzero(is_bl)
    if len(sel):
        if store is None:
            reason[sel] = "cutout_missing"
        else:
            ps = store_pixscale(store.meta)
            if ps is not None and abs(ps / pixel_scale - 1) > 0.02:
                reason[sel] = "pixscale_mismatch"
            else:
                ids = cuts["source_id"].astype(str).to_numpy()[sel]
                bs = int(cfg["batch_size"])
                if predict is None:
                    from .models import predict_flux as predict
                for start in range(0, len(sel), bs):
                    part = sel[start:start + bs]
                    cubes, status = store.get(list(ids[start:start + bs]))
                    stamps, why = prepare_stamps(cubes, stamp)
                    status = np.asarray(status).astype(str)
                    why = np.where(status != "ok", np.char.add("cutout_", status), why)
                    good = why == ""
                    reason[part] = why
                    if good.any():
                        pred = np.asarray(predict(model, stamps[good]), dtype=float)
                        flux[part[good]] = pred[:, 0]
                        flux_comp[part[good]] = pred[:, 1]
                bad = np.isin(np.arange(n), sel) & (reason == "") & ~(
                    np.isfinite(flux) & (flux > 0))
                reason[bad] = "model_nonpositive"
                flux[bad] = np.nan
    ok = reason == ""
    flux = np.where(ok, flux, np.nan)
    flux_comp = np.where(ok, flux_comp, np.nan)
    return pd.DataFrame({
        "source_id": pd.Series(cuts["source_id"].astype(str).to_numpy(), dtype="string"),
        "is_blended": pd.Series(is_bl, dtype="boolean"),
        "blend_rule": pd.Series(np.where(rule == "", None, rule), dtype="string"),
        f"blend_flux_r_{model_name}": pd.Series(flux, dtype="float64"),
        f"blend_mag_r_{model_name}": pd.Series(flux_to_mag(flux), dtype="float64"),
        f"blend_flux_r_companion_{model_name}": pd.Series(flux_comp, dtype="float64"),
        "blends_reason": pd.Series(np.where(ok, None, reason), dtype="string"),
    })


def units(model_name: str) -> dict:
    """Units of the deblend columns (astropy syntax)."""
    return {f"blend_flux_r_{model_name}": "nanomaggy",
            f"blend_mag_r_{model_name}": "mag",
            f"blend_flux_r_companion_{model_name}": "nanomaggy"}
