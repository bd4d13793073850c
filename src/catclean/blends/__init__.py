"""Photometry of blended galaxy pairs (paper 002, Boucaud et al.).

Modules
-------
galaxies
    GalSim renderer of isolated r-band galaxies in nanomaggies (Sec. 2.1) with their sep
    segmentation maps and Kron (FLUX_AUTO-like) fluxes used as truth (Sec. 3).
photometry
    sep helpers: Kron photometry, noise estimate, and the cold/hot Source Extractor
    baseline with the assignment rules (i)-(iii) of Sec. 3.3 (Table 3 parameters).
blending
    Pairing rules of Sec. 2.2 and the train/test split by galaxy of Sec. 2.3.
models
    Keras 3 networks: blend2flux (Sec. 3.1, Table 2), U-Net and blend2mask2flux (Sec. 3.2).
metrics
    dmag bias / scatter / outlier fraction / MAPE / IoU and the split tables of Sec. 4.
apply
    Deblended photometry for catalog sources flagged as blended.
"""

MORPHOLOGIES = ("bulge", "disk", "bulge_disk", "irregular")
ZERO_POINT = 22.5  # nanomaggies: mag = 22.5 - 2.5 log10(flux)

__all__ = ["MORPHOLOGIES", "ZERO_POINT"]
