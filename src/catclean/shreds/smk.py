"""Input helpers for ``workflow/rules/shreds.smk`` (kept here so the rule file holds rules
only)."""

from __future__ import annotations


def model_kind(shreds: dict) -> str:
    return shreds.get("model", {}).get("kind", "trained")


def model_path(shreds: dict, model_dir: str) -> str:
    """The scoring model: the trained ``.keras`` or the configured file / SavedModel."""
    if model_kind(shreds) == "trained":
        return f"{model_dir}/shred_cnn.keras"
    path = shreds.get("model", {}).get("path")
    if not path:
        raise ValueError(f"shreds.model.kind={model_kind(shreds)!r} needs shreds.model.path")
    return path


def training_inputs(shreds: dict) -> dict:
    training = shreds.get("training", {})
    if training.get("source", "synthetic") == "labeled":
        return {"csv": training["labeled"]["csv"]}
    return {}


def summary_inputs(results: str, surveys, release: dict, partitions) -> dict:
    """Per survey: its shreds and cuts Parquet files over all partitions."""
    out = {}
    for s in surveys:
        out[s] = [f"{results}/{stage}/{s}/{release[s]}/hpx={h}.parquet"
                  for stage in ("shreds", "cuts") for h in partitions]
    return out
