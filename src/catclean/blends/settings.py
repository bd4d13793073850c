"""Settings of the blends stage: preset resolution without heavy imports.

Used at workflow parse time (``workflow/rules/blends.smk``) and by the scripts.
"""

from __future__ import annotations

# Table 3 of paper 002 (duplicated from .photometry so this module imports nothing heavy)
COLD = {"thresh": 5.0, "minarea": 10, "deblend_cont": 0.01, "deblend_nthresh": 64}
HOT = {"thresh": 4.0, "minarea": 6, "deblend_cont": 0.0001, "deblend_nthresh": 64}

DEFAULT_PRESET = {
    "stamp": 64, "n_galaxies": 800, "n_train": 2400, "n_test": 600,
    "b2f_filters": 16, "unet_depth": 4, "unet_filters": 8, "b2m2f_filters": 8,
    "epochs": 12, "unet_epochs": 6, "e2e_epochs": 8, "batch_size": 32,
    "learning_rate": 1e-3, "e2e_learning_rate": 3e-4, "patience": 5, "seg_weight": 0.1,
    "warmup_epochs": 8, "batchnorm": False, "unet_batch_size": 8,
}


def resolve(blends_cfg: dict) -> dict:
    """Flat settings: preset sizes + ``sim`` + ``pairing`` + ``baseline`` of the config.

    ``sim`` is the top-level ``blends.sim`` updated with the preset's own ``sim`` mapping
    (if any), so a preset can change the simulated instrument (pixel scale, PSF, noise,
    magnitude and size distributions) without touching the default.
    """
    cfg = dict(blends_cfg or {})
    presets = cfg.get("presets", {}) or {}
    name = cfg.get("preset", "small")
    if presets and name not in presets:
        raise ValueError(f"blends.preset={name!r} is not one of blends.presets: "
                         f"{sorted(presets)}")
    preset = dict(presets.get(name, {}) or {})
    # a preset may override any simulator key (e.g. ``candels``: HST-like 0.06"/pix and
    # PSF); keys it does not name keep the top-level ``sim`` values (Legacy resolution)
    sim_override = dict(preset.pop("sim", {}) or {})
    out = dict(DEFAULT_PRESET)
    out.update(preset)
    out["preset"] = name
    out["sim"] = {**dict(cfg.get("sim", {}) or {}), **sim_override}
    out["sim"]["stamp"] = out["stamp"]
    pairing = {"max_dmag": 2.0, "min_sep_R": 0.5, "max_sep_frac": 1.0,
               "test_fraction": 0.2, "val_fraction": 0.2}
    pairing.update(cfg.get("pairing", {}) or {})
    out["pairing"] = pairing
    base = cfg.get("baseline", {}) or {}
    out["baseline"] = {"cold": {**COLD, **(base.get("cold") or {})},
                       "hot": {**HOT, **(base.get("hot") or {})}}
    return out
