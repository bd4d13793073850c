"""Render synthetic host fields with GalSim.

One *field* is a TAN-projected square image centred on a host, in the three bands g, r, z
of one survey (:class:`~catclean.sky.surveys.SurveySpec`), in nanomaggies (AB zero point
22.5), with:

- a Moffat PSF per band whose FWHM varies from field to field (seeing), x[0.9, 1.15];
- Galactic extinction from a smooth E(B-V) map (:func:`ebv_map`);
- Gaussian sky noise for the survey depth plus source Poisson noise;
- saturated cores of bright stars (clipped, ``SATUR`` mask bit), the odd bad column
  (``BADPIX``) and, sometimes, a stripe missing one band (``nobs = 0``, ivar = 0), as in
  real coadds;
- a truth *owner map*: for every pixel, the truth object contributing most r-band flux.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import galsim
import numpy as np
import pandas as pd
from astropy.wcs import WCS

from .morphology import EARLY_TYPE_BULGE_FRAC, KNOT_CONCENTRATION, host_profile
from .surveys import BANDS, NANOMAGGY_ZP, SurveySpec
from .wcs import field_wcs  # noqa: F401 - the field WCS, re-exported

BADPIX, SATUR = 1, 2
GSPARAMS = galsim.GSParams(maximum_fft_size=16384, folding_threshold=1e-2)

#: g-r (mag) below which a background galaxy is on the blue cloud
#: (``background_colour_locus``; sky.scene draws red ones at g-r ~ 1.0 +- 0.12)
BACKGROUND_RED_GR = 0.8

#: rendering presets (``sky.realism``). ``None``/"none" is the original science sky (its
#: outputs are unchanged); "viewer" is the realistic training sky of issue 11 ("viewer6",
#: below, is "viewer" with four changes):
#:
#: - ``morphology``: hosts drawn by :func:`_host_realistic` (inclined thick/thin discs with
#:   continuous log-spiral arms, bars, flocculent and irregular discs, dust lanes, disc
#:   colour gradients, knots that follow the arms, ellipticals and S0s);
#: - ``knot_scale``: multiplies the host light in star-forming knots;
#: - ``psf_wing``: fraction of the PSF light in a broad Moffat wing (beta 2, 3x FWHM);
#: - ``bad_column_rate`` / ``gap_rate``: probability of a bad column / a band missing in a
#:   stripe (the viewer's coadds interpolate these; the science sky keeps 0.5 / 0.1);
#:
#: and, used by the shred training set (:mod:`catclean.shreds.data`) when it cuts stamps:
#:
#: - ``resample``: "lanczos3" samples the native images with the viewer's Lanczos-3
#:   kernel (white noise near the native sigma); otherwise the flux-conserving box
#:   resampling, which correlates and lowers the noise 3x;
#: - ``cutout_noise``: extra white noise added to each resampled stamp, in units of the
#:   survey's native per-pixel sky sigma (0.75 made up for the box resampling; not needed
#:   with "lanczos3");
#: - ``jpeg_quality``: JPEG round trip of every stamp (0: none);
#: - ``r_max``: faintest candidate (r, Kron): 20, whose candidates have the central surface
#:   brightness and radial profiles of the real eye-labelled ones (r <= 21 filled the
#:   galaxy class with faint specks; the real candidates are resolved galaxies);
#: - ``all_hosts``: keep early-type hosts (their outskirts and centres are candidates too);
#: - ``host_z_range`` / ``host_log_mass_range``: the training hosts' redshifts and log
#:   stellar masses, replacing ``shreds.training.z_range`` / ``log_mass_range``: the real
#:   candidates lie around NSA galaxies of every mass, whose discs mostly fit in a 60"
#:   stamp, not around large log M > 10.2 discs at z < 0.03 that fill it (which made the
#:   synthetic shreds' stamps saturate 4x as often as the real ones);
#: - ``sky_offset_mean``: band -> mean (native sky sigma) of the residual sky level: the
#:   real stamps' empty sky is 1 grey level redder (R 34, G 33, B 33);
#: - ``knot_concentration``: star-forming knots are placed with probability (disc light)^k
#:   beyond the bulge (1.5 without the option; the HII regions of real discs follow the
#:   disc light more closely, so shreds also come from the fainter outer disc);
#: - ``knot_colour``: (g-r, r-z) in mag of the hosts' star-forming knots, instead of
#:   :data:`catclean.sky.morphology.COLOURS`' (0.25, -0.15); the host's integrated colour
#:   is kept (its disc takes up the difference).
#:
#: and, for the field's population (:func:`realistic_truth`,
#: :func:`catclean.sky.fields.host_field`):
#:
#: - ``host_reddening``: (Delta(g-r), Delta(r-z)) in mag added to the hosts' integrated
#:   colours: the host table's discs (g-r ~ 0.45) are bluer than the yellow-white NSA hosts
#:   (log M 10.2-11.2, g-r ~ 0.6-0.7) of the real viewer cutouts;
#: - ``early_type_colour``: (g-r, r-z) of bulge-dominated hosts (ellipticals and S0s),
#:   discs included: the red sequence (the host table gives S0 discs the colour of
#:   star-forming discs);
#: - ``host_colour_scatter``: (sigma(g-r), sigma(r-z)[, rho]) in mag, a host-to-host
#:   scatter of the star-forming hosts' colours with correlation rho of the two deviates
#:   (1 without it; the host table's colours follow the bulge fraction alone; real stamps
#:   of shreds range from blue-white dwarfs to yellow discs, and include teal discs, blue
#:   in r-z but not in g-r);
#: - ``host_quenched_frac``: fraction of the star-forming hosts turned into early types
#:   (bulge-to-total 0.5-0.8, no knots): massive NSA hosts are often quenched, and the
#:   real galaxy class is rich in red host centres with extended envelopes;
#: - ``host_dimming``: mag added to the hosts in every band at fixed size (a higher
#:   mass-to-light ratio: fainter, lower-surface-brightness hosts);
#: - ``background_faint_reddening``: (Delta(g-r), Delta(r-z)) mag per mag fainter than
#:   r = 20 for the background galaxies: the faint field lies at higher redshift and is
#:   redder, in r-z above all (DESI ELGs at r ~ 23 have r-z ~ 1); the real stamps' faint
#:   field sources are redder than the synthetic ones (docs/realism.md);
#: - ``host_knot_size_scale``: multiplies the hosts' knot size (Gaussian sigma 0.3 kpc):
#:   real HII regions are 1-3 viewer pixels at the hosts' distances, not the 10-15 px
#:   beads that 0.3-0.6 kpc blobs make at z ~ 0.01;
#: - ``host_z_weighting``: "uniform" draws the hosts uniform in z inside ``host_z_range``
#:   (:func:`catclean.sky.hosts.synthetic_hosts`), not uniform in volume: the eye-picked
#:   real candidates are rich in pieces of nearby hosts larger than the stamp;
#: - ``background_colour_locus``: (Delta(g-r), slope, intercept, sigma) puts blue
#:   background galaxies (g-r < :data:`BACKGROUND_RED_GR`) on a star-forming locus
#:   r-z = slope (g-r) + intercept +- sigma after reddening g-r by Delta (k-correction at
#:   z ~ 0.1-0.3): independent g-r and r-z gave lilac galaxies that real stamps lack;
#: - ``mdwarf_frac``: fraction of field stars recoloured as M dwarfs (g-r 1.45 +- 0.05,
#:   r-z uniform 1.0-2.4 mag), which dominate faint high-latitude star counts; the
#:   science sky's locus (r-z <= 0.9) has no red stars, the viewer's fields are full of them;
#: - ``star_density_scale`` / ``background_density_scale``: multiply the configured star and
#:   background-galaxy densities (per deg^2): real fields hold more sources per stamp
#:   (galaxy counts to r = 24.5 are ~1e5 deg^-2);
#: - ``noise_scale``: multiplies the sky sigma (a number, or band -> number): with the
#:   viewer's Lanczos-3 resampling the stamps' noise is ~1.25x that of the real stamps at
#:   the depths of :data:`catclean.sky.surveys.SURVEYS` (the real candidates' DR9 coadds
#:   are ~0.25 mag deeper), and the real red (z) channel is slightly noisier than green/blue;
#: - ``noise_corr``: Gaussian sigma (native pixels) of the pixel-noise correlation: a coadd
#:   resamples every exposure onto its grid (Lanczos), so neighbouring coadd pixels share
#:   noise; the real stamps' noise has more power on 2-4 pixel scales (``grad_energy``)
#:   than white noise of the same pixel-to-pixel amplitude;
#: - ``gain``: electrons per nanomaggy of the coadd, for the source Poisson noise: a DR9
#:   coadd collects ~10 e-/s per nanomaggy over ~3 x 90 s, i.e. ~2500 e-/nmgy; the
#:   science sky's 200 makes bright discs and cores 3-4x too noisy (real stamps' noise
#:   falls over bright hosts, the arcsinh stretch compresses it);
#: - ``sky_subtract``: mesh size (native pixels) of a sep (clipped-mode) background
#:   subtracted from every band, as the survey pipeline subtracts its sky (with it some of
#:   the light of faint galaxies, PSF wings and halos): without it the synthetic stamps'
#:   sky is 1-2 grey levels above the real stamps' 34 (a median mesh over-subtracts: 32-33);
#: - ``depth_scatter`` / ``band_depth_scatter``: field-to-field scatter (natural-log sigma)
#:   of the sky noise (and ivar), common to the three bands / per band: real coadd depths
#:   vary with the number of passes (the real stamps' noise spreads twice as wide as a
#:   fixed depth gives) while the channels' noise stays locked together;
#: - ``sky_offset``: band -> scatter (in native sky sigma) of a constant sky-level residual
#:   per field and band added to the stamps (coadd sky-subtraction errors, largest in z:
#:   the real stamps' sky R - G spreads to -5 grey levels, tinting whole stamps cyan);
#: - ``satellite_log_mass_range``: log stellar masses of the hosts' satellites (read by
#:   :func:`catclean.sky.fields.host_field`; 6.5-9.2 without it): up to LMC / M33 masses,
#:   as around real Milky-Way-like hosts; the real galaxy candidates are larger and
#:   brighter than the synthetic ones without them (light 6-12 px from the centre);
#: - ``satellite_knot_scale``: multiplies the satellites' knot light fraction (bright
#:   RandomKnots made dwarfs look like rings of blue beads; real dwarfs are smoother);
#: - ``candidate_cuts`` (read by :mod:`catclean.shreds.data`): training cutouts only of
#:   detections that pass the paper's photometric candidate cuts
#:   (``catclean.shreds.data.CANDIDATE_CUTS``: r, surface brightness, colour, not a point
#:   source, measured size; paper 001 Sec. 3.1), the selection the real eye-labelled
#:   cutouts went through: no stars, no red background galaxies, host centres kept.
REALISM_PRESETS = {
    "none": {},
    "viewer": {"morphology": True, "knot_scale": 0.5, "psf_wing": 0.06,
               "bad_column_rate": 0.0, "gap_rate": 0.02,
               # noise (realism2): the viewer's Lanczos-3 resampling of correlated coadd
               # noise, no extra stamp noise, real depths and their spread; realism3: z
               # noisier than g and r, which gives the real stamps' chroma noise
               "resample": "lanczos3", "cutout_noise": 0.0,
               # realism4: white (not smoothed) noise at the real stamps' amplitude,
               # measured on stamps whose border holds no light
               "noise_scale": {"g": 0.754, "r": 0.777, "z": 1.276},
               "noise_corr": 0.4, "sky_subtract": 256,
               "depth_scatter": 0.2, "band_depth_scatter": 0.05, "gain": 2500.0,
               # realism5: the real empty sky's R spreads over 1 grey level, not 1.6
               "sky_offset": {"g": 0.03, "r": 0.03, "z": 0.05},
               "sky_offset_mean": {"z": 0.025},
               "jpeg_quality": 90, "all_hosts": True,
               "host_reddening": (0.07, 0.0), "mdwarf_frac": 0.4,
               "star_density_scale": 2.0, "background_density_scale": 1.5,
               # realism3: the paper's candidate selection, dwarfs with fainter knots
               "candidate_cuts": True, "satellite_knot_scale": 0.5,
               # realism4: the real candidates' population: brighter candidates around
               # smaller, farther, more varied hosts; red early types; knots spread
               # further out in the disc
               "r_max": 20.0, "host_log_mass_range": (9.5, 11.0),
               "early_type_colour": (0.77, 0.45), "knot_concentration": 1.2,
               "satellite_log_mass_range": (7.0, 10.0),
               # realism5: more nearby hosts larger than the stamp, with HII regions of
               # their real size; teal discs (r-z scatter independent of g-r); quenched
               # hosts; blue background galaxies on the star-forming locus
               "host_z_range": (0.005, 0.04), "host_z_weighting": "uniform",
               "host_knot_size_scale": 0.4, "host_colour_scatter": (0.15, 0.2, 0.0),
               "host_quenched_frac": 0.3, "background_colour_locus": (0.1, 0.6, 0.0, 0.06)},
}
#: "viewer6" (session of 2026-12-04, docs/realism.md): the viewer preset (the realism5
#: sky the shipped shred model was pre-trained on, kept as it is) plus no g/r sky residual
#: (the real empty sky's B - G spreads over 0.7 grey levels, not 1.3), a redder faint
#: field, and fainter hosts' knots that crowd onto the bright arms (fewer knot shreds: 36-44%
#: shreds against 51-61%, nearer the eye-labelled real 33%). The trees AUC fell by
#: 0.015-0.022, paired on the same hosts: 0.847 -> 0.831 (hosts 0-95), 0.871 -> 0.856
#: (hosts 96-287), 0.852 -> 0.830 (hosts 0-287 through ``catclean shreds realism``; over
#: 20 draws with three seed sets viewer6 scores ~0.84).
REALISM_PRESETS["viewer6"] = {**REALISM_PRESETS["viewer"],
                              "sky_offset": {"g": 0.0, "r": 0.0, "z": 0.05},
                              "background_faint_reddening": (0.08, 0.1),
                              "knot_scale": 0.15, "knot_concentration": 3.0}


def realism_options(realism) -> dict:
    """Options dict from a preset name, a dict (preset ``"preset"`` key plus overrides)
    or None (the original sky)."""
    if realism is None or realism is False:
        return {}
    if isinstance(realism, str):
        if realism not in REALISM_PRESETS:
            raise ValueError(f"unknown sky.realism preset {realism!r}; "
                             f"choose from {sorted(REALISM_PRESETS)}")
        return dict(REALISM_PRESETS[realism])
    opts = dict(REALISM_PRESETS.get(realism.get("preset", "viewer"), {}))
    opts.update({k: v for k, v in realism.items() if k != "preset"})
    return opts


def _object_normals(seeds, stream: int) -> np.ndarray:
    """One standard normal deviate per object, from the object's own seed and ``stream``
    (the same value in every field that holds the object)."""
    return np.array([np.random.default_rng([int(s), stream]).normal() for s in seeds],
                    dtype=float)


def realistic_truth(truth: pd.DataFrame, realism) -> pd.DataFrame:
    """The truth table with the realism preset's population changes (a copy; unchanged
    when ``realism`` has none of the options below).

    A fraction ``host_quenched_frac`` of the star-forming hosts become early types
    (``bulge_frac`` uniform in :data:`catclean.sky.morphology.EARLY_TYPE_BULGE_FRAC`-0.8,
    no knots); the hosts' knots scale in size by ``host_knot_size_scale``; hosts fade by
    ``host_dimming`` mag in every band. Hosts get redder by ``host_reddening`` =
    (Delta(g-r), Delta(r-z)) mag at fixed r; early types
    get the red-sequence colours ``early_type_colour`` = (g-r, r-z) (+- 0.03 mag);
    star-forming hosts scatter by ``host_colour_scatter`` = (sigma(g-r), sigma(r-z)[,
    rho]) mag, two normal deviates per host with correlation rho (default 1: bluer in
    g-r is bluer in r-z). Blue background galaxies move onto ``background_colour_locus``
    (see :data:`REALISM_PRESETS`). A fraction ``mdwarf_frac`` of stars become M dwarfs:
    g-r = 1.45 +- 0.05, r-z uniform in 1.0-2.4 mag. Every draw comes from the object's
    own seed, so overlapping fields agree; r (hence the candidate selection) changes only
    with ``host_dimming``. ``background_faint_reddening`` = (Delta(g-r), Delta(r-z)) mag per
    mag fainter than r = 20 reddens the faint background galaxies (not the candidates).
    """
    ropt = realism_options(realism)
    red = ropt.get("host_reddening")
    early = ropt.get("early_type_colour")
    fm = float(ropt.get("mdwarf_frac", 0.0) or 0.0)
    spread = ropt.get("host_colour_scatter")
    locus = ropt.get("background_colour_locus")
    quench = float(ropt.get("host_quenched_frac", 0.0) or 0.0)
    knot_size = float(ropt.get("host_knot_size_scale", 1.0) or 1.0)
    dim = float(ropt.get("host_dimming", 0.0) or 0.0)
    faint_red = ropt.get("background_faint_reddening")
    if (not red and not early and not spread and fm <= 0 and not locus and quench <= 0
            and knot_size == 1.0 and dim == 0.0 and not faint_red):
        return truth
    truth = truth.copy()
    host = (truth.kind == "host").to_numpy()
    background = (truth.kind == "background").to_numpy()
    if dim:
        truth.loc[host, ["mag_g", "mag_r", "mag_z"]] += dim
    if knot_size != 1.0:
        truth.loc[host, "knot_size"] *= knot_size
    if quench > 0:
        # massive hosts are often quenched: turn this fraction of the star-forming ones
        # into early types (bulge-dominated, no knots)
        for k in np.flatnonzero(host & (truth.bulge_frac < EARLY_TYPE_BULGE_FRAC).to_numpy()):
            r = np.random.default_rng([int(truth.seed.iloc[k]), 36])
            if r.uniform() < quench:
                truth.iloc[k, truth.columns.get_loc("bulge_frac")] = r.uniform(
                    EARLY_TYPE_BULGE_FRAC, 0.8)
                truth.iloc[k, truth.columns.get_loc("knot_frac")] = 0.0
    if red:
        truth.loc[host, "mag_g"] += float(red[0])
        truth.loc[host, "mag_z"] -= float(red[1])
    if early:
        # bulge-dominated hosts sit on the red sequence as a whole (their discs too)
        for k in np.flatnonzero(host & (truth.bulge_frac >= EARLY_TYPE_BULGE_FRAC).to_numpy()):
            r = np.random.default_rng([int(truth.seed.iloc[k]), 32])
            mr = truth.mag_r.iloc[k]
            truth.iloc[k, truth.columns.get_loc("mag_g")] = mr + float(early[0]) + r.normal(0, 0.03)
            truth.iloc[k, truth.columns.get_loc("mag_z")] = mr - float(early[1]) - r.normal(0, 0.03)
    seeds = truth.seed.to_numpy()
    if spread:
        # star-forming discs: a blue cloud, not one colour (g-r and r-z deviates with
        # correlation rho)
        late = host & (truth.bulge_frac < EARLY_TYPE_BULGE_FRAC).to_numpy()
        rho = float(spread[2]) if len(spread) > 2 else 1.0
        dc = _object_normals(seeds[late], 33)
        dz = dc
        if rho < 1.0:
            dz = rho * dc + np.sqrt(1.0 - rho**2) * _object_normals(seeds[late], 34)
        truth.loc[late, "mag_g"] += float(spread[0]) * dc
        truth.loc[late, "mag_z"] -= float(spread[1]) * dz
    if locus:
        # blue background galaxies on the star-forming colour locus, redshifted
        shift, slope, icpt, scat = (float(v) for v in locus)
        gr = (truth.mag_g - truth.mag_r).to_numpy()
        blue = background & (gr < BACKGROUND_RED_GR)
        dev = _object_normals(seeds[blue], 35)
        gr = gr[blue] + shift
        mr = truth.mag_r.to_numpy()[blue]
        truth.loc[blue, "mag_g"] = mr + gr
        truth.loc[blue, "mag_z"] = mr - (slope * gr + icpt + scat * dev)
    if faint_red:
        # the faint field lies at higher redshift: redder in g-r and much redder in r-z
        # (ELGs at r ~ 23 have r-z ~ 1, LRGs ~ 1.6) than the nearby galaxies' colours
        dm = np.maximum(truth.mag_r.to_numpy()[background] - 20.0, 0.0)
        truth.loc[background, "mag_g"] += float(faint_red[0]) * dm
        truth.loc[background, "mag_z"] -= float(faint_red[1]) * dm
    if fm > 0:
        for k in np.flatnonzero((truth.kind == "star").to_numpy()):
            r = np.random.default_rng([int(truth.seed.iloc[k]), 31])
            if r.uniform() < fm:
                mr = truth.mag_r.iloc[k]
                truth.iloc[k, truth.columns.get_loc("mag_g")] = mr + r.normal(1.45, 0.05)
                truth.iloc[k, truth.columns.get_loc("mag_z")] = mr - r.uniform(1.0, 2.4)
    return truth


def ebv_map(ra, dec):
    """Smooth synthetic Galactic E(B-V) in mag (0.01-0.08), deterministic in position."""
    ra, dec = np.radians(np.asarray(ra)), np.radians(np.asarray(dec))
    return 0.045 + 0.03 * np.sin(3 * ra + 1.0) * np.cos(2 * dec) + 0.005 * np.cos(7 * ra)


@dataclass
class Field:
    """A rendered field: images, inverse variances, masks and truth."""

    survey: str
    wcs: WCS
    images: dict  # band -> float32 (ny, nx), nanomaggies
    ivar: dict  # band -> float32, 1/nanomaggies^2 (sky only, 0 where no data)
    maskbits: dict  # band -> int16
    nobs: dict  # band -> int16 number of exposures
    psf_fwhm: dict  # band -> arcsec
    owner: np.ndarray  # int64 truth_id of the dominant r-band contributor, -1 for sky
    model_r: np.ndarray  # noiseless r-band image
    truth: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def shape(self):
        return self.owner.shape


def _profile(obj, band: str, flux: float, realism: dict | None = None,
             pixscale: float = 0.262):
    """GalSim profile of one truth object (before PSF) with total flux in nanomaggies."""
    beta = (90.0 + obj.pa) * galsim.degrees  # PA east of north -> angle from +x (east left)
    if obj.kind == "star":
        return None
    if obj.kind == "host" and realism and realism.get("morphology"):
        return host_profile(obj, band, flux, pixscale, knot_scale=realism.get("knot_scale", 1.0),
                            gsparams=GSPARAMS,
                            early_red=bool(realism.get("early_type_colour")),
                            knot_concentration=float(realism.get("knot_concentration",
                                                                 KNOT_CONCENTRATION)),
                            knot_colour=realism.get("knot_colour"))
    if obj.kind == "host":
        bf, kf = obj.bulge_frac, obj.knot_frac
        # component colours (see hosts.py): bulge red, disc intermediate, knots blue
        col = {"g": (0.80, 0.45, 0.10), "r": (0.0, 0.0, 0.0), "z": (-0.45, -0.30, 0.0)}[band]
        ref = {"g": 0.80 * bf + 0.45 * (1 - bf - kf) + 0.10 * kf, "r": 0.0,
               "z": -(0.45 * bf + 0.30 * (1 - bf - kf))}[band]
        w = np.array([bf, 1 - bf - kf, kf]) * 10 ** (-0.4 * (np.array(col) - ref))
        w = w / w.sum()
        bulge = galsim.DeVaucouleurs(half_light_radius=max(obj.bulge_re, 0.3),
                                     flux=flux * w[0], gsparams=GSPARAMS)
        bulge = bulge.shear(q=max(obj.q, 0.65), beta=beta)
        disk = galsim.Exponential(half_light_radius=obj.r_e, flux=flux * w[1],
                                  gsparams=GSPARAMS).shear(q=obj.q, beta=beta)
        # star formation: half in many small clumps (RandomKnots, a random walk over the
        # disc), half in a few giant HII complexes on two log-spiral arms with a
        # power-law luminosity function dN/dL ~ L^-2 (Kennicutt et al. 1989)
        knots = galsim.RandomKnots(int(obj.n_knots), half_light_radius=obj.r_e,
                                   flux=0.5 * flux * w[2], rng=galsim.BaseDeviate(int(obj.seed)),
                                   gsparams=GSPARAMS)
        knots = galsim.Convolve(knots, galsim.Gaussian(sigma=obj.knot_size, gsparams=GSPARAMS))
        complexes = _hii_complexes(obj, 0.5 * flux * w[2])
        return galsim.Add([bulge, disk, knots.shear(q=obj.q, beta=beta),
                           complexes.shear(q=obj.q, beta=beta)])
    knot_frac = float(obj.knot_frac)
    if obj.kind == "satellite" and realism:
        knot_frac *= float(realism.get("satellite_knot_scale", 1.0))
    smooth_frac = 1.0 - knot_frac
    if obj.kind == "satellite" and obj.n_knots > 0:
        kcol = {"g": -0.25, "r": 0.0, "z": 0.2}[band]  # knots bluer than the dwarf
        kw = knot_frac * 10 ** (-0.4 * kcol)
        smooth_frac = smooth_frac / (smooth_frac + kw)
    prof = galsim.Sersic(n=float(np.clip(obj.sersic_n, 0.5, 4.0)),
                         half_light_radius=max(obj.r_e, 0.05), flux=flux * smooth_frac,
                         gsparams=GSPARAMS).shear(q=obj.q, beta=beta)
    if obj.n_knots > 0:
        knots = galsim.RandomKnots(int(obj.n_knots), half_light_radius=obj.r_e,
                                   flux=flux * (1 - smooth_frac),
                                   rng=galsim.BaseDeviate(int(obj.seed)), gsparams=GSPARAMS)
        knots = galsim.Convolve(knots, galsim.Gaussian(sigma=obj.knot_size, gsparams=GSPARAMS))
        prof = galsim.Add([prof, knots.shear(q=obj.q, beta=beta)])
    return prof


def _hii_complexes(obj, flux: float):
    """Giant HII complexes: Gaussians of ~2x the knot size along two log-spiral arms.

    Radii follow the exponential disc (scale length r_e / 1.678) between 0.4 and 3 r_e;
    arm angle theta = phase + ln(R / h) / tan(pitch), pitch 15-25 deg, +-0.3 rad scatter;
    fluxes from dN/dL ~ L^-2 over a factor 30 in L, normalised to ``flux``.
    """
    rng = np.random.default_rng([int(obj.seed), 11])
    n = 4 + int(obj.n_knots) // 12
    h = obj.r_e / 1.678
    radius = np.clip(rng.exponential(h, n) + 0.4 * obj.r_e, 0.4 * obj.r_e, 3.0 * obj.r_e)
    pitch = np.radians(rng.uniform(15, 25))
    phase = rng.choice([0.0, np.pi], n) + rng.uniform(0, 2 * np.pi)
    theta = phase + np.log(radius / h) / np.tan(pitch) + rng.normal(0, 0.3, n)
    u = rng.uniform(0, 1, n)
    lum = 1.0 / (1.0 - u * (1 - 1 / 30.0))  # inverse CDF of L^-2 on [1, 30]
    lum = lum / lum.sum() * flux
    blobs = [galsim.Gaussian(sigma=obj.knot_size * rng.uniform(1.5, 2.5), flux=f,
                             gsparams=GSPARAMS).shift(r * np.cos(t), r * np.sin(t))
             for r, t, f in zip(radius, theta, lum)]
    return galsim.Add(blobs)


def _stamp_size(obj, fwhm: float, pixscale: float) -> int:
    if obj.kind == "star":
        size = 10 * fwhm / pixscale + 10 * max(0.0, 17.0 - obj.mag_r) / pixscale
    else:
        size = (12 * max(obj.r_e, 0.1) + 4 * fwhm) / pixscale
    return int(np.clip(2 * (size // 2) + 1, 33, 2001))


def render_field(truth: pd.DataFrame, center_ra: float, center_dec: float, npix: int,
                 spec: SurveySpec, seed: int, field_key: int = 0, realism=None) -> Field:
    """Render all ``truth`` objects into a field of ``npix`` x ``npix`` pixels.

    Parameters
    ----------
    truth : pandas.DataFrame
        Truth table from :func:`catclean.sky.scene.scene`.
    center_ra, center_dec : float
        Field centre, deg.
    npix : int
        Side in pixels of ``spec``.
    spec : SurveySpec
    seed : int
        Master seed; the noise of this field is seeded by ``(seed, survey, field_key)``.
    field_key : int
        Distinguishes fields (e.g. the host NSAID).
    realism : str or dict, optional
        A :data:`REALISM_PRESETS` name or options (:func:`realism_options`); None (default)
        renders the original science sky, bit for bit.
    """
    ropt = realism_options(realism)
    if ropt:
        truth = realistic_truth(truth, ropt)
    rng = np.random.default_rng([seed, 4, sum(map(ord, spec.name)), field_key])
    wcs = field_wcs(center_ra, center_dec, npix, spec.pixscale)
    x, y = wcs.all_world2pix(truth.ra.to_numpy(), truth.dec.to_numpy(), 0)
    ebv = ebv_map(truth.ra.to_numpy(), truth.dec.to_numpy())
    seeing = rng.uniform(0.9, 1.15)
    psf_fwhm = {b: spec.psf_fwhm[b] * seeing for b in BANDS}
    images, ivar, maskbits, nobs = {}, {}, {}, {}
    owner = np.full((npix, npix), -1, dtype=np.int64)
    best = np.zeros((npix, npix), dtype=np.float32)
    model_r = None
    inside = (x > -200) & (x < npix + 200) & (y > -200) & (y < npix + 200)
    for band in BANDS:
        psf = galsim.Moffat(beta=spec.psf_beta, fwhm=psf_fwhm[band], gsparams=GSPARAMS)
        if ropt.get("psf_wing"):
            fw = float(ropt["psf_wing"])
            wing = galsim.Moffat(beta=2.0, fwhm=3.0 * psf_fwhm[band], gsparams=GSPARAMS)
            psf = galsim.Add([psf.withFlux(1.0 - fw), wing.withFlux(fw)])
        full = galsim.ImageF(npix, npix, scale=spec.pixscale)
        for k in np.flatnonzero(inside):
            obj = truth.iloc[k]
            mag = obj[f"mag_{band}"] + spec.ext_coeff[band] * ebv[k]
            flux = 10 ** (-0.4 * (mag - NANOMAGGY_ZP))
            prof = _profile(obj, band, flux, ropt, spec.pixscale)
            prof = psf.withFlux(flux) if prof is None else galsim.Convolve(prof, psf)
            size = _stamp_size(obj, psf_fwhm[band], spec.pixscale)
            ix, iy = int(np.round(x[k])), int(np.round(y[k]))
            stamp = galsim.ImageF(size, size, scale=spec.pixscale)
            stamp.setCenter(ix + 1, iy + 1)  # GalSim pixels are 1-based
            offset = galsim.PositionD(x[k] - ix, y[k] - iy)
            method = "auto"
            if obj.kind in ("host", "satellite") and obj.n_knots > 0 and not (
                    obj.kind == "host" and ropt.get("morphology")):
                method = "fft"  # RandomKnots inside a Convolve: FFT keeps it deterministic
            prof.drawImage(image=stamp, offset=offset, method=method, add_to_image=False)
            overlap = stamp.bounds & full.bounds
            if not overlap.isDefined():
                continue
            full[overlap] += stamp[overlap]
            if band == "r":
                sub = stamp[overlap].array
                sl = (slice(overlap.ymin - 1, overlap.ymax), slice(overlap.xmin - 1, overlap.xmax))
                better = sub > best[sl]
                best[sl][better] = sub[better]
                owner[sl][better] = int(obj.truth_id)
        model = full.array.astype(np.float32)
        sigma = spec.sky_sigma(band)
        ns = ropt.get("noise_scale", 1.0)
        sigma = sigma * float(ns[band] if isinstance(ns, dict) else ns)
        if ropt.get("depth_scatter"):  # this field's coadd depth (own generators: the
            # science sky's draws are untouched): common to all bands, plus per band
            key = [seed, 5, sum(map(ord, spec.name)), field_key]
            common = np.random.default_rng(key).normal(0.0, float(ropt["depth_scatter"]))
            own = np.random.default_rng(key + [BANDS.index(band)]).normal(
                0.0, float(ropt.get("band_depth_scatter", 0.0)))
            sigma = sigma * float(np.exp(common + own))
        var = sigma**2 + np.clip(model, 0, None) / float(ropt.get("gain", spec.gain))
        noise = rng.normal(0.0, 1.0, model.shape).astype(np.float32)
        if ropt.get("noise_corr"):  # coadd pixel noise correlated over ~1 pixel
            from scipy import ndimage

            noise = ndimage.gaussian_filter(noise, float(ropt["noise_corr"]), mode="wrap")
            noise /= np.float32(noise.std())
        img = model + noise * np.sqrt(var)
        if ropt.get("sky_subtract"):  # the pipeline's sky: a coarse background mesh,
            # which also takes out the mean light of faint and extended sources
            import sep

            mesh = ropt["sky_subtract"]
            b = int(mesh[band] if isinstance(mesh, dict) else mesh)
            img = np.ascontiguousarray(img)
            # in place, as qa.extract does: no full-field background map is built
            sep.Background(img, bw=b, bh=b).subfrom(img)
            img = img.astype(np.float32)
        mask = np.zeros(model.shape, dtype=np.int16)
        # saturation: the core of a star at saturation_mag fills the full well
        sat_flux = 10 ** (-0.4 * (spec.saturation_mag - NANOMAGGY_ZP))
        sat_level = sat_flux * (spec.pixscale / psf_fwhm[band]) ** 2 * 0.9
        sat = model > sat_level
        img[sat] = sat_level
        mask[sat] |= SATUR
        iv = np.full(model.shape, 1.0 / sigma**2, dtype=np.float32)
        nob = np.full(model.shape, rng.integers(2, 6), dtype=np.int16)
        if rng.uniform() < ropt.get("bad_column_rate", 0.5):  # a bad column
            col = rng.integers(0, npix)
            mask[:, col:col + 2] |= BADPIX
            iv[:, col:col + 2] = 0.0
            img[:, col:col + 2] = 0.0
        if rng.uniform() < ropt.get("gap_rate", 0.1):  # a band missing in a stripe (CCD gap)
            w = int(15 / spec.pixscale)
            x0 = rng.integers(0, max(1, npix - w))
            iv[:, x0:x0 + w] = 0.0
            img[:, x0:x0 + w] = 0.0
            nob[:, x0:x0 + w] = 0
        images[band], ivar[band], maskbits[band], nobs[band] = img, iv, mask, nob
        if band == "r":
            model_r = model
    return Field(survey=spec.name, wcs=wcs, images=images, ivar=ivar, maskbits=maskbits,
                 nobs=nobs, psf_fwhm=psf_fwhm, owner=owner, model_r=model_r,
                 truth=truth.reset_index(drop=True),
                 meta={"center_ra": center_ra, "center_dec": center_dec, "npix": npix,
                       "pixscale": spec.pixscale, "seeing_factor": seeing})


def write_field_fits(fld: Field, path) -> None:
    """Write a field as multi-extension FITS (IMAGE_*, IVAR_*, MASK_*, NOBS_*, OWNER, TRUTH).

    Images are in nanomaggies with the TAN WCS in every image header, like the Legacy
    Surveys coadds; written to a temporary file and renamed (atomic).
    """
    import os

    from astropy.io import fits
    from astropy.table import Table

    hdr = fld.wcs.to_header()
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["SURVEY"] = fld.survey
    for k, v in fld.meta.items():
        hdus[0].header[k[:8].upper()] = v
    for band in BANDS:
        h = hdr.copy()
        h["BUNIT"] = "nanomaggy"
        h["BAND"] = band
        h["PSF_FWHM"] = (fld.psf_fwhm[band], "arcsec")
        hdus.append(fits.ImageHDU(fld.images[band], header=h, name=f"IMAGE_{band.upper()}"))
        hdus.append(fits.ImageHDU(fld.ivar[band], header=hdr, name=f"IVAR_{band.upper()}"))
        hdus.append(fits.ImageHDU(fld.maskbits[band], header=hdr, name=f"MASK_{band.upper()}"))
        hdus.append(fits.ImageHDU(fld.nobs[band], header=hdr, name=f"NOBS_{band.upper()}"))
    hdus.append(fits.ImageHDU(fld.owner, header=hdr, name="OWNER"))
    truth = Table.from_pandas(fld.truth.astype({"kind": "str"}))
    hdus.append(fits.BinTableHDU(truth, name="TRUTH"))
    tmp = f"{path}.tmp"
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    os.replace(tmp, path)


class FieldReadError(ValueError):
    """A field FITS file is missing, truncated or lacks an extension / header keyword;
    the message names the file and the key."""


def read_field_fits(path) -> Field:
    """Read a field written by :func:`write_field_fits`.

    Raises
    ------
    FieldReadError
        Naming the file, and the extension or keyword when one is missing
        (``IMAGE_R``, ``PSF_FWHM``, ...), or the reason it cannot be read.
    """
    from astropy.io import fits
    from astropy.table import Table

    path = Path(path)
    if not path.exists():
        raise FieldReadError(f"field file not found: {path}")
    try:
        hdul = fits.open(path, memmap=False)
    except Exception as exc:
        raise FieldReadError(f"field file {path} unreadable: {type(exc).__name__}: {exc}"
                             ) from None
    with hdul:
        have = [h.name for h in hdul]

        def ext(name: str):
            try:
                return hdul[name]
            except (KeyError, IndexError):
                raise FieldReadError(f"field file {path} lacks extension {name!r} "
                                     f"(has {have})") from None

        def key(header, name: str, where: str):
            try:
                return header[name]
            except KeyError:
                raise FieldReadError(f"field file {path}: extension {where} lacks header "
                                     f"keyword {name!r}") from None

        try:
            prim = hdul[0].header
            wcs = WCS(ext("IMAGE_R").header)
            images, ivar, mask, nobs, psf = {}, {}, {}, {}, {}
            for band in BANDS:
                B = band.upper()
                images[band] = ext(f"IMAGE_{B}").data.astype(np.float32)
                psf[band] = float(key(ext(f"IMAGE_{B}").header, "PSF_FWHM", f"IMAGE_{B}"))
                ivar[band] = ext(f"IVAR_{B}").data.astype(np.float32)
                mask[band] = ext(f"MASK_{B}").data.astype(np.int16)
                nobs[band] = ext(f"NOBS_{B}").data.astype(np.int16)
            owner = ext("OWNER").data.astype(np.int64)
            truth = Table(ext("TRUTH").data).to_pandas()
            survey = key(prim, "SURVEY", "PRIMARY")
        except FieldReadError:
            raise
        except Exception as exc:  # truncated data: 'cannot reshape array', None.astype
            raise FieldReadError(f"field file {path} unreadable (truncated or corrupt): "
                                 f"{type(exc).__name__}: {exc}") from None
        meta = {"center_ra": prim.get("CENTER_R"), "npix": prim.get("NPIX"),
                "pixscale": prim.get("PIXSCALE")}
    return Field(survey=survey, wcs=wcs, images=images, ivar=ivar, maskbits=mask,
                 nobs=nobs, psf_fwhm=psf, owner=owner, model_r=None, truth=truth, meta=meta)
