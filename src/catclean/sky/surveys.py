"""Imaging properties of the surveys the synthetic sky imitates.

Numbers are typical published values:

- Legacy Surveys DR9 (DECaLS/BASS/MzLS; Dey et al. 2019): 0.262"/pix; median seeing FWHM
  ~1.3" (g), 1.2" (r), 1.1" (z); 5-sigma point-source depths ~24.7, 24.2 AB in g, r; in z
  we use 23.9, calibrated on the noise of real DR9 viewer cutouts (see docs/cutouts.md).
- SDSS (York et al. 2000; Stoughton et al. 2002): 0.396"/pix; median seeing ~1.4";
  95% completeness for point sources ~22.2 (g), 22.2 (r), 20.5 (z).
- Pan-STARRS1 3pi stacks (Chambers et al. 2016): 0.25"/pix; FWHM ~1.3, 1.2, 1.1";
  5-sigma stack depths ~23.3, 23.2, 22.3.

Galactic extinction coefficients R_b = A_b / E(B-V) are those of the Legacy Surveys DR9
(Schlafly & Finkbeiner 2011 with DECam filters): g 3.214, r 2.165, z 1.211; SDSS and PS1 use
their own filter curves (values from the same reference).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: AB zero point of one nanomaggy (flux of 1 nmgy <=> mag 22.5)
NANOMAGGY_ZP = 22.5
BANDS = ("g", "r", "z")


@dataclass(frozen=True)
class SurveySpec:
    """Imaging model of one survey (all bands share the pixel grid).

    Attributes
    ----------
    name : str
    pixscale : float
        arcsec / pixel.
    psf_fwhm : dict
        band -> PSF FWHM in arcsec (Moffat, beta = ``psf_beta``).
    depth5 : dict
        band -> 5-sigma point-source depth (AB mag).
    ext_coeff : dict
        band -> R_b = A_b / E(B-V).
    saturation_mag : float
        point sources brighter than this (AB) saturate their core pixels.
    gain : float
        electrons per nanomaggy, sets the source Poisson noise.
    """

    name: str
    pixscale: float
    psf_fwhm: dict
    depth5: dict
    ext_coeff: dict
    psf_beta: float = 3.5
    saturation_mag: float = 16.0
    gain: float = 200.0
    bands: tuple = field(default=BANDS)

    def sky_sigma(self, band: str) -> float:
        """Per-pixel sky noise in nanomaggies that gives the 5-sigma depth.

        For a background-limited point source, S/N = F / (sigma_pix sqrt(NEA)) with the
        noise-equivalent area NEA = 4 pi sigma_psf^2 (Gaussian approximation, pixels).
        """
        f5 = 10 ** (-0.4 * (self.depth5[band] - NANOMAGGY_ZP))
        sigma_psf_pix = self.psf_fwhm[band] / 2.3548 / self.pixscale
        nea = 4 * np.pi * sigma_psf_pix**2
        return f5 / (5.0 * np.sqrt(nea))


SURVEYS: dict[str, SurveySpec] = {
    "legacy": SurveySpec(
        name="legacy", pixscale=0.262,
        psf_fwhm={"g": 1.35, "r": 1.22, "z": 1.12},
        # z 23.9: the red-channel noise of the 856 real DR9 viewer cutouts in
        # shared/real (docs/cutouts.md) is 1.7x lower than a 23.3 depth gives
        depth5={"g": 24.7, "r": 24.2, "z": 23.9},
        ext_coeff={"g": 3.214, "r": 2.165, "z": 1.211},
        saturation_mag=15.5,
    ),
    "sdss": SurveySpec(
        name="sdss", pixscale=0.396,
        psf_fwhm={"g": 1.50, "r": 1.40, "z": 1.35},
        depth5={"g": 22.9, "r": 22.7, "z": 21.0},
        ext_coeff={"g": 3.303, "r": 2.285, "z": 1.263},
        saturation_mag=14.5, gain=60.0,
    ),
    "ps1": SurveySpec(
        name="ps1", pixscale=0.25,
        psf_fwhm={"g": 1.31, "r": 1.19, "z": 1.11},
        depth5={"g": 23.3, "r": 23.2, "z": 22.3},
        ext_coeff={"g": 3.172, "r": 2.271, "z": 1.217},
        saturation_mag=14.0, gain=120.0,
    ),
}
