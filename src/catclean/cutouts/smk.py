"""Input helpers for ``workflow/rules/cutouts.smk`` (kept here so the rule file holds rules
only)."""

from __future__ import annotations


def cutout_provider(config: dict, survey: str) -> str:
    """``synthetic`` or ``live`` for ``survey`` (``cutouts.provider: auto`` follows the
    survey's catalog provider)."""
    prov = config.get("cutouts", {}).get("provider", "auto")
    if prov == "auto":
        return "live" if config["surveys"][survey]["provider"] == "live" else "synthetic"
    return prov


def cutouts_inputs(wildcards, config: dict, results: str, plan: dict) -> dict:
    """The partition's cut table and, for the synthetic provider, the rendered Legacy
    fields of the partition's hosts (``plan`` = the hosts checkpoint's partition plan)."""
    w = wildcards
    inputs = {"cuts": f"{results}/cuts/{w.survey}/{w.release}/hpx={w.hpx}.parquet"}
    if cutout_provider(config, w.survey) == "synthetic":
        imaging = config.get("cutouts", {}).get("imaging_survey", "legacy")
        release = config["surveys"][imaging]["release"]
        inputs["fields"] = [f"{results}/fields/{imaging}/{release}/{host}.fits"
                            for host in plan["fields"].get(str(w.hpx), [])]
    return inputs
