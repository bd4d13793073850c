"""Settings of the blends stage from the resolved config (no heavy imports).

Used at workflow parse time (``workflow/rules/blends.smk``, as the rules' ``params``)
and by tests and the ``catclean blends`` commands, so every caller gets the same flat
settings dict.
"""

from __future__ import annotations

import copy

from ..config import preset_settings


def stage_settings(config: dict) -> dict:
    """Flat settings of the chosen preset: its sizes + ``sim`` + ``pairing`` + ``baseline``.

    ``config`` must have been resolved (:func:`catclean.config.validate_config`), so the
    preset and every section are complete. ``sim`` is the top-level ``blends.sim``
    updated with the preset's own ``sim`` mapping (``$defs/sim_override``, keys left out
    keep the top-level value), so a preset can change the simulated instrument (e.g.
    ``candels``: HST-like 0.06"/pix and PSF) without touching the default; its ``stamp``
    is the preset's.
    """
    section = config["blends"]
    out = preset_settings(config, "blends")
    sim_override = out.pop("sim")
    out["sim"] = {**copy.deepcopy(section["sim"]), **sim_override, "stamp": out["stamp"]}
    out["pairing"] = copy.deepcopy(section["pairing"])
    out["baseline"] = copy.deepcopy(section["baseline"])
    return out


#: the settings each rule's output depends on (its ``params``, so that Snakemake reruns
#: exactly the jobs a changed key affects)
SIMULATION_KEYS = ("preset", "stamp", "n_galaxies", "n_train", "n_test", "sim", "pairing")
TRAINING_KEYS = ("preset", "stamp", "b2f_filters", "unet_depth", "unet_filters",
                 "b2m2f_filters", "epochs", "unet_epochs", "warmup_epochs", "e2e_epochs",
                 "batch_size", "unet_batch_size", "learning_rate", "e2e_learning_rate",
                 "patience", "seg_weight", "batchnorm")
EVALUATION_KEYS = ("preset", "baseline")


def select(settings: dict, keys) -> dict:
    """The entries ``keys`` of a settings dict."""
    return {k: settings[k] for k in keys}
