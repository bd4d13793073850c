"""Detection, deblending and measurement of rendered fields with sep.

This is what turns a rendered sky into a *catalog*, the way survey pipelines do it:

1. a chi-like detection image, sum over bands of image * sqrt(ivar), normalised to unit
   noise (the Legacy Surveys detect on such stacks);
2. ``sep.extract`` with the configured threshold, minimum area and multi-threshold
   deblending (``deblend_nthresh``, ``deblend_cont``): large discs with bright
   star-forming knots are split into several objects, i.e. **shreds emerge here**;
3. per band Kron photometry masked by the segmentation map, half-light radii,
   shapes, and the quality quantities the catalogues carry (``fracflux``,
   ``fracmasked``, ``fracin``, ``rchisq``, ``nobs``, ``allmask``);
4. truth labels by matching segments to the truth owner map (:func:`truth_labels`).

The output of :func:`measure_field` is a survey-neutral measurement table; the survey
writers in :mod:`catclean.sky.native` turn it into each survey's own columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sep

from ..runtime import configure_sep
from .render import BADPIX, SATUR, Field
from .surveys import BANDS

#: truth labels of catalog detections
LABELS = ("galaxy", "shred", "star", "blend", "spurious")


def _gauss_kernel(fwhm_pix: float) -> np.ndarray:
    sigma = fwhm_pix / 2.3548
    r = int(np.ceil(2 * sigma))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    k = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def detection_image(fld: Field) -> np.ndarray:
    """Unit-noise detection image: sum_b image_b sqrt(ivar_b) / sqrt(n_b with data)."""
    num = np.zeros(fld.shape, dtype=np.float32)
    nb = np.zeros(fld.shape, dtype=np.float32)
    for b in BANDS:
        w = np.sqrt(fld.ivar[b])
        num += fld.images[b] * w
        nb += (w > 0)
    return np.where(nb > 0, num / np.sqrt(np.maximum(nb, 1)), 0.0).astype(np.float32)


def _profile_fit(img, var, seg, seg_id, x, y, a, b, theta, flux, r50, n_sersic, radius):
    """Fit quality and neighbour contamination of one smooth profile.

    Returns ``(rchisq, fracflux)``:

    - ``rchisq``: reduced chi^2 of a smooth elliptical Sersic model (the measured flux,
      half-light radius and shape) over the object's own segment. A proxy for the
      Tractor's RCHISQ: a source that one galaxy model describes gets ~1; structured
      light (knots on a disc, a shred sitting on its host's light) gets more.
    - ``fracflux``: the Tractor's FRACFLUX, profile-weighted flux of *other* sources at
      this position over our flux, ~ sb_other * NEA / flux, with sb_other the median of
      the surrounding pixels that are not ours (host light under a knot counts; empty sky
      gives ~0) and NEA = 1 / sum(P^2) the noise-equivalent area of our profile.
    """
    ny, nx = img.shape
    x0, x1 = max(int(x - radius), 0), min(int(x + radius) + 1, nx)
    y0, y1 = max(int(y - radius), 0), min(int(y + radius) + 1, ny)
    if x1 <= x0 or y1 <= y0 or not np.isfinite(flux) or flux <= 0:
        return np.nan, np.nan
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dx, dy = xx - x, yy - y
    ct, st = np.cos(theta), np.sin(theta)
    u = (dx * ct + dy * st) / max(a, 0.5)
    v = (-dx * st + dy * ct) / max(b, 0.5)
    rr = np.sqrt(u**2 + v**2) * np.sqrt(max(a, 0.5) * max(b, 0.5))
    bn = 2.0 * n_sersic - 1.0 / 3.0
    prof = np.exp(-bn * (rr / max(r50, 0.5)) ** (1.0 / n_sersic))
    own = seg[y0:y1, x0:x1] == seg_id
    if own.sum() < 3:
        return np.nan, np.nan
    p = prof / prof.sum()
    resid = (img[y0:y1, x0:x1] - p * flux)[own]
    rchisq = float(np.sum(resid**2 / var[y0:y1, x0:x1][own]) / own.sum())
    ring = ~own & (rr > 1.5 * max(r50, 1.0)) & (rr < 3.0 * max(r50, 1.0)) \
        & np.isfinite(var[y0:y1, x0:x1])
    sb_other = max(float(np.median(img[y0:y1, x0:x1][ring])), 0.0) if ring.sum() >= 8 else 0.0
    fracflux = sb_other / float(np.sum(p**2)) / flux
    return rchisq, fracflux


def measure_field(fld: Field, thresh: float = 1.5, minarea: int = 5,
                  deblend_nthresh: int = 64, deblend_cont: float = 0.0003,
                  filter_fwhm: float = 2.0, gain: float = 200.0) -> pd.DataFrame:
    """Detect, deblend and measure all sources of a rendered field.

    Returns
    -------
    pandas.DataFrame
        One row per detection: ``x, y`` (0-based pixels), ``ra, dec`` (deg), ``a, b``
        (pixels), ``theta`` (rad, from +x), ``flux_<b>`` and ``flux_err_<b>`` (Kron,
        nanomaggies), ``r50_obs`` (observed r-band half-light radius, arcsec),
        ``r50_psf`` (arcsec), ``shape_r`` (PSF-deconvolved, arcsec), ``conc`` (r90/r50),
        ``fracflux_<b>``, ``fracmasked_<b>``, ``fracin_<b>``, ``rchisq_<b>``,
        ``nobs_<b>``, ``allmask_<b>``, ``sep_flag``, ``deblended``, ``npix``, ``seg_id``.
    """
    det = detection_image(fld)
    configure_sep(det.size)
    kernel = _gauss_kernel(filter_fwhm) if filter_fwhm > 0 else None
    objs, seg = sep.extract(det, thresh, err=1.0, minarea=minarea,
                            deblend_nthresh=deblend_nthresh, deblend_cont=deblend_cont,
                            filter_kernel=kernel, segmentation_map=True, clean=True)
    n = len(objs)
    out = {"x": objs["x"], "y": objs["y"], "a": objs["a"], "b": objs["b"],
           "theta": objs["theta"], "npix": objs["npix"], "sep_flag": objs["flag"],
           "deblended": (objs["flag"] & sep.OBJ_MERGED) > 0,
           "seg_id": np.arange(1, n + 1, dtype=np.int64)}
    if n == 0:
        return pd.DataFrame(out)
    ra, dec = fld.wcs.all_pix2world(objs["x"], objs["y"], 0)
    out["ra"], out["dec"] = ra, dec
    x, y, a, b, th = objs["x"], objs["y"], objs["a"], objs["b"], objs["theta"].astype(float)
    # sep's apertures need finite a >= b > 0 and |theta| <= pi/2
    a = np.where(np.isfinite(a), np.maximum(a, 0.5), 0.5)
    b = np.where(np.isfinite(b), np.clip(b, 0.5, None), 0.5)
    b = np.minimum(a, b)
    th = np.clip(np.where(np.isfinite(th), th, 0.0), -np.pi / 2, np.pi / 2)
    seg_ids = out["seg_id"]
    pixscale = fld.meta.get("pixscale") or abs(fld.wcs.wcs.cd[0, 0]) * 3600
    kron, _ = sep.kron_radius(det, x, y, a, b, th, 6.0, seg_id=seg_ids, segmap=seg)
    kron = np.where(np.isfinite(kron) & (kron > 0), kron, 1.0)
    kr = np.maximum(2.5 * kron, 3.5 / np.sqrt(a * b))  # SExtractor's minimum Kron aperture
    ones = np.ones(fld.shape, dtype=np.float32)
    area_in, _, _ = sep.sum_ellipse(ones, x, y, a, b, th, kr, subpix=1)
    area_full = np.pi * a * b * kr**2
    for band in BANDS:
        img, ivar = fld.images[band], fld.ivar[band]
        sky_var = np.where(ivar > 0, 1.0 / np.maximum(ivar, 1e-30), 0.0)
        err = np.sqrt(sky_var + np.clip(img, 0, None) / gain).astype(np.float32)
        bad = (ivar <= 0) | ((fld.maskbits[band] & BADPIX) > 0)
        flux, ferr, _ = sep.sum_ellipse(img, x, y, a, b, th, kr, err=err, mask=bad,
                                        subpix=1, seg_id=seg_ids, segmap=seg)
        masked, _, _ = sep.sum_ellipse(bad.astype(np.float32), x, y, a, b, th, kr, subpix=1)
        ix = np.clip(np.round(x).astype(int), 0, fld.shape[1] - 1)
        iy = np.clip(np.round(y).astype(int), 0, fld.shape[0] - 1)
        nobs = fld.nobs[band][iy, ix]
        flux = np.where(nobs > 0, flux, 0.0)
        ferr = np.where(nobs > 0, ferr, np.inf)
        out[f"flux_{band}"] = flux
        out[f"flux_err_{band}"] = ferr
        out[f"fracmasked_{band}"] = np.clip(masked / np.maximum(area_in, 1e-6), 0, 1)
        out[f"fracin_{band}"] = np.clip(area_in / area_full, 0, 1)
        out[f"nobs_{band}"] = nobs.astype(np.int16)
        out[f"allmask_{band}"] = (fld.maskbits[band][iy, ix] & (BADPIX | SATUR)).astype(np.int16)
    # sizes in r
    r_img = fld.images["r"]
    rmax = np.maximum(6.0 * a, 3.0)
    r50, _ = sep.flux_radius(r_img, x, y, rmax, 0.5, normflux=np.maximum(out["flux_r"], 1e-6),
                             subpix=5, seg_id=seg_ids, segmap=seg)
    r90, _ = sep.flux_radius(r_img, x, y, rmax, 0.9, normflux=np.maximum(out["flux_r"], 1e-6),
                             subpix=5, seg_id=seg_ids, segmap=seg)
    r50 = np.where(np.isfinite(r50) & (r50 > 0), r50, 0.5)
    r90 = np.where(np.isfinite(r90) & (r90 > 0), r90, r50 * 2)
    psf_r50 = 0.5 * fld.psf_fwhm["r"]  # Moffat beta=3.5 half-light radius ~ FWHM / 2
    out["r50_obs"] = r50 * pixscale
    out["r50_psf"] = np.full(n, psf_r50)
    out["shape_r"] = np.sqrt(np.clip(out["r50_obs"] ** 2 - psf_r50**2, 0, None))
    out["conc"] = r90 / r50
    # goodness of fit of one smooth profile and neighbour light, per band (Tractor's
    # RCHISQ and FRACFLUX)
    n_sersic = np.where(out["conc"] > 2.6, 4.0, 1.0)
    for band in BANDS:
        img = fld.images[band]
        var = np.where(fld.ivar[band] > 0, 1.0 / np.maximum(fld.ivar[band], 1e-30), np.inf)
        var = var + np.clip(img, 0, None) / gain
        radius = np.clip(3 * kron * a, 4, 80)
        fits = np.array([
            _profile_fit(img, var, seg, seg_ids[i], x[i], y[i], a[i], b[i], th[i],
                         out[f"flux_{band}"][i], r50[i], n_sersic[i], radius[i])
            for i in range(n)]).reshape(n, 2)
        out[f"rchisq_{band}"] = fits[:, 0]
        out[f"fracflux_{band}"] = fits[:, 1]
    df = pd.DataFrame(out)
    df.attrs["segmap"] = seg
    return df


def truth_labels(meas: pd.DataFrame, fld: Field, blend_ratio: float = 0.3) -> pd.DataFrame:
    """Label each detection by matching its segment to the truth owner map.

    For every detection the r-band light of its segment is split among truth objects by
    the owner map (the object contributing most flux to each pixel). Then:

    - ``spurious``: the segment holds (almost) no truth light (a noise peak);
    - ``star``: the dominant truth object is a star;
    - ``blend``: a second, distinct truth object holds >= ``blend_ratio`` of the dominant
      one's light and its centre lies inside the segment;
    - ``galaxy``: the detection is the primary one of its dominant galaxy (the segment
      containing the galaxy centre, or else the one holding most of its light);
    - ``shred``: any other detection dominated by a galaxy that already has a primary
      detection -- a fragment (knot, arm, outskirt) of a larger galaxy.

    Returns a frame with ``truth_label``, ``truth_id`` (dominant object), ``truth_kind``
    and ``truth_frac`` (its share of the segment's truth light).
    """
    seg = meas.attrs["segmap"]
    n = len(meas)
    if n == 0:
        return pd.DataFrame({"truth_label": pd.Series(dtype="str"),
                             "truth_id": pd.Series(dtype="int64"),
                             "truth_kind": pd.Series(dtype="str"),
                             "truth_frac": pd.Series(dtype="float64")})
    model = fld.model_r if fld.model_r is not None else np.clip(fld.images["r"], 0, None)
    sel = seg > 0
    pairs = pd.DataFrame({"seg": seg[sel], "owner": fld.owner[sel], "f": model[sel]})
    light = pairs.groupby(["seg", "owner"], sort=False)["f"].sum().reset_index()
    truth = fld.truth.set_index("truth_id")
    kinds = truth["kind"].astype(str)
    ny, nx = seg.shape
    tx, ty = fld.wcs.all_world2pix(truth.ra.to_numpy(), truth.dec.to_numpy(), 0)
    tix, tiy = np.round(tx).astype(int), np.round(ty).astype(int)
    ok = (tix >= 0) & (tix < nx) & (tiy >= 0) & (tiy < ny)
    centre_seg = pd.Series(0, index=truth.index)
    centre_seg[ok] = seg[tiy[ok], tix[ok]]
    dom_id = np.full(n, -1, dtype=np.int64)
    dom_frac = np.zeros(n)
    second = np.full(n, -1, dtype=np.int64)
    second_ratio = np.zeros(n)
    real = light[light.owner >= 0]
    tot = light.groupby("seg")["f"].sum()
    for s, grp in real.groupby("seg"):
        g = grp.sort_values("f", ascending=False)
        i = int(s) - 1
        dom_id[i] = int(g.owner.iloc[0])
        dom_frac[i] = g.f.iloc[0] / max(tot.get(s, 0.0), 1e-12)
        if len(g) > 1:
            second[i] = int(g.owner.iloc[1])
            second_ratio[i] = g.f.iloc[1] / max(g.f.iloc[0], 1e-12)
    # the flux a 1-sigma-per-pixel noise peak of this area would have: segments whose truth
    # light is below ~3x the noise in their area are noise detections
    noise = np.sqrt(meas["npix"].to_numpy()) / np.sqrt(max(float(np.median(fld.ivar["r"])), 1e-30))
    seg_truth = real.groupby("seg")["f"].sum().reindex(np.arange(1, n + 1)).fillna(0).to_numpy()
    label = np.full(n, "galaxy", dtype=object)
    # primary detection of each galaxy: the segment with its centre, else most of its light
    primary = {}
    for tid, s in centre_seg.items():
        if s > 0 and dom_id[s - 1] == tid:
            primary[tid] = s - 1
    for tid in set(dom_id[dom_id >= 0]) - set(primary):
        cand = real[real.owner == tid].sort_values("f", ascending=False)
        for s in cand.seg:
            if dom_id[int(s) - 1] == tid:
                primary[tid] = int(s) - 1
                break
    for i in range(n):
        tid = dom_id[i]
        if tid < 0 or seg_truth[i] < 3 * noise[i]:
            label[i] = "spurious"
            continue
        if kinds.get(tid) == "star":
            label[i] = "star"
        elif primary.get(tid) != i:
            label[i] = "shred"
        else:
            label[i] = "galaxy"
        sec = second[i]
        if label[i] in ("galaxy", "star") and sec >= 0 and second_ratio[i] >= blend_ratio \
                and centre_seg.get(sec, 0) == i + 1:
            label[i] = "blend"
    return pd.DataFrame({"truth_label": label.astype(str), "truth_id": dom_id,
                         "truth_kind": [str(kinds.get(t, "none")) for t in dom_id],
                         "truth_frac": dom_frac})
