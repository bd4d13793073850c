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
import re
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


_SCHEMA_CACHE: dict[tuple[str, int], Any] = {}


def _load_schema(path: Path) -> Any:
    """A schema file, parsed once per (path, modification time): YAML parsing is most of
    the cost of :func:`validate_config`. Returns a deep copy (callers may not share)."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[key] = _load_yaml(path)
    return copy.deepcopy(_SCHEMA_CACHE[key])


def _registry(schema_path: Path):
    """A ``referencing`` registry that resolves relative ``$ref`` to sibling YAML files."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    def retrieve(uri: str):
        path = Path(uri.removeprefix("file://"))
        if not path.is_absolute():
            path = schema_path.parent / path
        return Resource.from_contents(_load_schema(path), default_specification=DRAFT202012)

    return Registry(retrieve=retrieve)


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # jsonschema puts the unknown key only in the message; name it explicitly
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts = parts + [",".join(extra)]
    if error.validator == "required":
        # one error per missing key; its message names it ("'seed' is a required property")
        missing = re.match(r"'(.+?)' is a required property", error.message)
        parts = parts + [missing.group(1) if missing else "?"]
    return ".".join(parts) if parts else "<top level>"


def _deref(schema: dict, root: dict, base: Path) -> tuple[dict, dict]:
    """Follow ``$ref`` (to a sibling file or ``#/$defs/...`` of the current file)."""
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if ref.startswith("#/"):
            target = root
            for part in ref[2:].split("/"):
                target = target[part]
        else:
            root = _load_schema(base / ref)
            target = root
        # keys written beside the $ref (a `default`, a `description`) refine the target
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, root


def _fill_missing(value: Any, default: Any) -> Any:
    """``value`` with the keys it lacks taken from ``default``, recursively."""
    if not (isinstance(value, dict) and isinstance(default, dict)):
        return value
    out = dict(value)
    for key, dval in default.items():
        out[key] = _fill_missing(out[key], dval) if key in out else copy.deepcopy(dval)
    return out


def _set_defaults(instance: Any, schema: dict, base: Path, root: dict | None = None) -> None:
    """Fill ``default`` values from the schema into ``instance`` (in place).

    Walks ``properties`` and ``additionalProperties`` (so every entry of a ``presets``
    mapping gets the defaults of the preset schema), following ``$ref``.
    """
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return
    schema, root = _deref(schema, root if root is not None else schema, base)
    props = schema.get("properties", {})
    for key, sub in props.items():
        sub, sub_root = _deref(sub, root, base)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        elif (isinstance(sub.get("additionalProperties"), dict)
              and isinstance(sub.get("default"), dict) and isinstance(instance.get(key), dict)):
            # a mapping of named entries (``presets``): the user's entries are merged onto
            # the schema's named defaults, so overriding one key of ``presets.small``
            # keeps the rest of ``small`` and every other preset
            instance[key] = _fill_missing(instance[key], sub["default"])
        if key in instance:
            _set_defaults(instance[key], sub, base, sub_root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in instance:
            if key not in props:
                _set_defaults(instance[key], extra, base, root)


def validate_config(config: dict, schema_path: Path | str = SCHEMA_PATH) -> dict:
    """Fill schema defaults into a config dict, validate it, and return it.

    This is the only place defaults come from: every key's default is in the schema
    (``workflow/schemas/``), including every named preset of a stage (``presets``) and
    the default of each preset field (``$defs/preset``). The function is idempotent, so
    a config that was already resolved passes through unchanged.

    Parameters
    ----------
    config : dict
        The parsed configuration (``config/config.yaml`` merged with overrides); filled
        in place.
    schema_path : path-like
        The top-level schema file.

    Returns
    -------
    dict
        The same dict, complete.

    Raises
    ------
    ConfigError
        Listing each invalid key as a dotted path with the reason, including a stage's
        ``preset`` that names no entry of its ``presets``.
    """
    from jsonschema import Draft202012Validator

    schema_path = Path(schema_path)
    schema = _load_schema(schema_path)
    _set_defaults(config, schema, schema_path.parent)
    registry = _registry(schema_path)
    validator = Draft202012Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    lines = [f"  config key '{_key_path(err)}': {err.message}" for err in errors]
    for stage, section in config.items():
        if isinstance(section, dict) and "preset" in section and "presets" in section:
            if section["preset"] not in (section["presets"] or {}):
                lines.append(f"  config key '{stage}.preset': {section['preset']!r} is not "
                             f"one of {stage}.presets: {sorted(section['presets'] or {})}")
    lines += _path_problems(config)
    lines += _release_problems(config)
    if lines:
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    return config


def _path_problems(config: dict) -> list[str]:
    """An absolute ``results_dir`` must lie under ``results_root``."""
    results_dir = config.get("results_dir")
    if not isinstance(results_dir, str) or not results_dir.startswith("/"):
        return []
    root = config.get("results_root")
    if root and Path(results_dir).resolve().is_relative_to(Path(root).resolve()):
        return []
    return [f"  config key 'results_dir': absolute path {results_dir!r} is not under "
            f"results_root ({root!r}); use a relative path or set results_root"]


def _release_problems(config: dict) -> list[str]:
    """Each ``surveys.<s>.release`` must be a release its providers know
    (:data:`catclean.catalogs.schema.RELEASES`), synthetic and live alike."""
    surveys = config.get("surveys")
    if not isinstance(surveys, dict):
        return []
    from .catalogs.schema import RELEASES

    out = []
    for name, spec in surveys.items():
        if not isinstance(spec, dict) or name not in RELEASES or "release" not in spec:
            continue
        if spec["release"] not in RELEASES[name]:
            out.append(f"  config key 'surveys.{name}.release': {spec['release']!r} is not a "
                       f"known {name} release; allowed: {list(RELEASES[name])}")
    return out


resolve_config = validate_config


def preset_settings(config: dict, stage: str) -> dict:
    """The settings of ``config[stage]``'s chosen preset, complete, plus its ``preset`` name.

    ``config`` must have been through :func:`validate_config`, which fills every preset
    field from the schema and checks that the name exists.
    """
    section = config[stage]
    name = section["preset"]
    return {**copy.deepcopy(section["presets"][name]), "preset": name}


def settings_from(cls, mapping: dict, **given):
    """An instance of the settings dataclass ``cls`` from the entries of ``mapping`` named
    like its fields (a complete config section or preset: every field is required, other
    keys are ignored); ``given`` fields are passed directly (e.g. a job's seed)."""
    from dataclasses import fields

    names = [f.name for f in fields(cls) if f.name not in given]
    missing = [n for n in names if n not in mapping]
    if missing:
        raise KeyError(f"{cls.__name__} settings lack {missing}")
    return cls(**{n: mapping[n] for n in names}, **given)


def schema_preset(stage: str, name: str | None = None) -> dict:
    """One complete preset of a stage, from the schema and the repository's config.

    For code outside the workflow (tests, benchmarks, notebooks) that needs a stage's
    settings without writing a config file; the same values a run would use.

    Parameters
    ----------
    stage : str
        Config section with ``preset`` / ``presets`` (``shreds``, ``blends``, ``qa``,
        ``som``, ``morphology``).
    name : str, optional
        Preset name; None takes the one ``config/config.yaml`` chooses.
    """
    overrides = {stage: {"preset": name}} if name else None
    return preset_settings(default_config(overrides), stage)


def default_config(overrides: dict | None = None) -> dict:
    """The repository's ``config/config.yaml`` (+ ``overrides``), resolved."""
    return load_config(REPO_ROOT / "config" / "config.yaml", overrides)


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


# --- config/README.md, generated from the schema ------------------------------------------

README_PATH = REPO_ROOT / "config" / "README.md"

_README_INTRO = """\
# catclean configuration keys

<!-- Generated from workflow/schemas/*.schema.yaml by `catclean config docs`; do not edit by
hand: change the schema's `description`/`default` and regenerate (a test checks this file). -->

`config/config.yaml` is the default: the embedded synthetic sky, fully offline.
`config/live.yaml` queries the real services. Every key is validated against
`workflow/schemas/config.schema.yaml` (and the per-stage schema files it references)
before any job starts; a wrong type, an out-of-range value or an unknown key stops the
run with a message naming the dotted key, e.g. `config key 'cuts.r_max': 35 is greater
than the maximum of 30`. Keys left out take the schema default shown here; the schema is
the only place defaults live.

Override a key for one run with a second config file, which is merged over the first:
`snakemake --cores all --configfile config/config.yaml my_overrides.yaml`, or
`catclean <stage> <command> --set key.sub=value` for the command line.

A stage with `preset` and `presets` takes its sizes from the named preset. The schema
defines every named preset in full; a config may override single keys of a preset
(`shreds: {presets: {small: {max_epochs: 3}}}` keeps the rest of `small`) or add a preset
of its own, whose missing keys take the preset-field defaults listed here.
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "`null`"
    text = json.dumps(value) if not isinstance(value, str) else value
    return f"`{text}`"


def _type_of(schema: dict) -> str:
    kind = schema.get("type", "")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if "enum" in schema:
        kind = " \\| ".join(f"`{v}`" for v in schema["enum"])
    return kind or "object"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows(schema: dict, root: dict, base: Path, prefix: str, out: list[str]) -> None:
    """Table rows for every leaf key under ``schema`` (objects with properties recurse)."""
    schema, root = _deref(schema, root, base)
    for key, sub in schema.get("properties", {}).items():
        sub, sub_root = _deref(sub, root, base)
        name = f"{prefix}{key}"
        if key == "presets" and isinstance(sub.get("additionalProperties"), dict):
            continue  # listed in their own tables
        if "properties" in sub and sub.get("type", "object") == "object":
            if sub.get("description"):
                out.append(f"| `{name}` | object | | {_cell(sub['description'])} |")
            _rows(sub, sub_root, base, name + ".", out)
            continue
        default = (_fmt(sub["default"]) if "default" in sub
                   else "required" if key in schema.get("required", []) else "")
        out.append(f"| `{name}` | {_type_of(sub)} | {default} | "
                   f"{_cell(sub.get('description', ''))} |")


def _preset_tables(section: dict, root: dict, base: Path, stage: str, out: list[str]) -> None:
    presets = section.get("properties", {}).get("presets")
    if not presets:
        return
    presets, proot = _deref(presets, root, base)
    field_schema, froot = _deref(presets.get("additionalProperties", {}), proot, base)
    named = presets.get("default", {}) or {}
    fields = list(field_schema.get("properties", {}))
    if not fields:
        return
    out += ["", f"### `{stage}.presets`", "",
            "| field | " + " | ".join(f"`{n}`" for n in named) + " | default | meaning |",
            "|---|" + "---|" * len(named) + "---|---|"]
    for field in fields:
        fs, _ = _deref(field_schema["properties"][field], froot, base)
        values = " | ".join(_fmt(named[n].get(field)) if field in named[n] else ""
                            for n in named)
        default = _fmt(fs["default"]) if "default" in fs else ""
        out.append(f"| `{field}` | {values} | {default} | {_cell(fs.get('description', ''))} |")


def config_reference(schema_path: Path | str = SCHEMA_PATH) -> str:
    """The text of ``config/README.md``: every key of the schema with type, default, meaning."""
    schema_path = Path(schema_path)
    base = schema_path.parent
    top = _load_schema(schema_path)
    out = [_README_INTRO.rstrip(), "", "## Top level", "",
           "| key | type | default | meaning |", "|---|---|---|---|"]
    sections = []
    for key, sub in top.get("properties", {}).items():
        resolved, root = _deref(sub, top, base)
        if "$ref" in sub and not str(sub["$ref"]).startswith("#"):
            sections.append((key, resolved, root))
        else:
            _rows({"properties": {key: sub}}, top, base, "", out)
    for key, section, root in sections:
        out += ["", f"## `{key}`", ""]
        if section.get("description"):
            out += [_cell(section["description"]), ""]
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        _rows(section, root, base, f"{key}.", out)
        _preset_tables(section, root, base, key, out)
    return "\n".join(out) + "\n"
