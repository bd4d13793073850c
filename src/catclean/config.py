"""Configuration loading and validation against ``workflow/schemas/config.schema.yaml``.

The schema is JSON-schema written as YAML, split into one file per stage and joined with
relative ``$ref``. :func:`validate_config` reports *every* problem at once, each one naming
the dotted key that is wrong (``cuts.r_max: 35 is greater than the maximum of 30``), so a
bad config fails before any job starts.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, out of range or unknown."""


def _load_yaml(path: Path) -> Any:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _registry(schema_path: Path):
    """A ``referencing`` registry that resolves relative ``$ref`` to sibling YAML files."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    def retrieve(uri: str):
        path = Path(uri.removeprefix("file://"))
        if not path.is_absolute():
            path = schema_path.parent / path
        return Resource.from_contents(_load_yaml(path), default_specification=DRAFT202012)

    return Registry(retrieve=retrieve)


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # jsonschema puts the unknown key only in the message; name it explicitly
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts = parts + [",".join(extra)]
    if error.validator == "required":
        missing = [m for m in error.validator_value if m not in error.instance]
        parts = parts + [",".join(missing)]
    return ".".join(parts) if parts else "<top level>"


def _set_defaults(instance: Any, schema: dict, base: Path) -> None:
    """Fill ``default`` values from the schema into ``instance`` (in place)."""
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return
    if "$ref" in schema:
        ref = schema["$ref"]
        schema = _load_yaml(base / ref) if not ref.startswith("#") else schema
    for key, sub in schema.get("properties", {}).items():
        if "$ref" in sub and not sub["$ref"].startswith("#"):
            sub = _load_yaml(base / sub["$ref"])
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _set_defaults(instance[key], sub, base)


def validate_config(config: dict, schema_path: Path | str = SCHEMA_PATH) -> dict:
    """Validate a config dict, fill schema defaults, and return it.

    Parameters
    ----------
    config : dict
        The parsed configuration (``config/config.yaml`` merged with overrides).
    schema_path : path-like
        The top-level schema file.

    Returns
    -------
    dict
        The same dict with defaults filled in.

    Raises
    ------
    ConfigError
        Listing each invalid key as a dotted path with the reason.
    """
    from jsonschema import Draft202012Validator

    schema_path = Path(schema_path)
    schema = _load_yaml(schema_path)
    registry = _registry(schema_path)
    validator = Draft202012Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors:
            key = _key_path(err)
            lines.append(f"  config key '{key}': {err.message}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    _set_defaults(config, schema, schema_path.parent)
    return config


def load_config(path: Path | str, overrides: dict | None = None) -> dict:
    """Read a YAML config file, apply ``overrides`` (deep-merged) and validate it."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    cfg = _load_yaml(path) or {}
    if overrides:
        cfg = deep_merge(cfg, overrides)
    return validate_config(cfg)


def deep_merge(base: dict, extra: dict) -> dict:
    """Return ``base`` updated recursively with ``extra`` (neither is modified)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_digest(config: dict) -> str:
    """A stable sha256 of the configuration, recorded in every output's provenance."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()
