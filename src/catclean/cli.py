"""The ``catclean`` command line: one entry point, one subcommand group per stage.

Examples
--------
::

    catclean shreds make-set --hosts 180 --out results/shreds_paper/train_set
    catclean shreds train --data 'results/shreds_paper/train_set*.npz' --preset paper
    catclean qa evaluate --set qa.preset=paper --workdir /tmp/qa_eval --out metrics.json
    catclean blends evaluate --set blends.preset=candels

Every command reads the same resolved configuration as the workflow
(``--config``, default ``config/config.yaml``, plus ``--set key=value`` overrides, then
:func:`catclean.config.validate_config`), so a command and a rule given the same config
do the same thing; command-line options only override named config keys and have no
defaults of their own.

A stage plugs in with a module ``catclean.<stage>.commands`` that defines
``register(subparsers)``: it adds a parser named after the stage with one sub-parser per
command, each with ``set_defaults(func=...)``; ``func(args)`` reads its config with
:func:`config_from_args` (command options passed as ``extra`` overrides) and returns the
exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import yaml

from . import compare, resources
from .config import README_PATH, REPO_ROOT, ConfigError, config_reference, deep_merge, load_config

#: stages whose ``commands`` module adds a subcommand group
STAGES = ("shreds", "qa", "blends", "morphology", "som")


def parse_overrides(items: list[str] | None) -> dict:
    """``["a.b=3", "c=[1, 2]"]`` -> ``{"a": {"b": 3}, "c": [1, 2]}`` (values parsed as YAML)."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE with a dotted KEY, got {item!r}")
        node: dict = {}
        cur = node
        parts = key.split(".")
        for part in parts[:-1]:
            cur[part] = {}
            cur = cur[part]
        cur[parts[-1]] = yaml.safe_load(value)
        out = deep_merge(out, node)
    return out


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--set``, ``--threads`` and ``--log`` for a command."""
    parser.add_argument("--config", action="append", default=None,
                        help="config YAML (repeatable, merged in order; default "
                             "config/config.yaml)")
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                        help="override one config key, e.g. --set shreds.preset=paper")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS/TensorFlow (default: the stage's `threads`)")
    parser.add_argument("--log", default=None, help="log file (default: stderr)")


def stage_commands(subparsers, stage: str, help: str):
    """The sub-parsers of one stage's command group (``catclean <stage> ...``)."""
    parser = subparsers.add_parser(stage, help=help)
    return parser.add_subparsers(dest="command", required=True)


def command(commands, name: str, func, help: str, **kwargs) -> argparse.ArgumentParser:
    """One command of a stage group: its parser, the config options, and ``func``."""
    parser = commands.add_parser(name, help=help, **kwargs)
    add_config_arguments(parser)
    parser.set_defaults(func=func)
    return parser


def config_from_args(args: argparse.Namespace, extra: dict | None = None) -> dict:
    """The resolved config of a command: ``--config`` files, ``extra``, then ``--set``."""
    paths = [Path(p) for p in (args.config or [REPO_ROOT / "config" / "config.yaml"])]
    overrides: dict = {}
    for path in paths[1:]:
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        with open(path) as fh:
            overrides = deep_merge(overrides, yaml.safe_load(fh) or {})
    overrides = deep_merge(overrides, extra or {})
    overrides = deep_merge(overrides, parse_overrides(args.set))
    return load_config(paths[0], overrides)


def _config_docs(args: argparse.Namespace) -> int:
    text = config_reference()
    if args.check:
        if not README_PATH.exists() or README_PATH.read_text() != text:
            print(f"catclean: {README_PATH} is out of date with the schema; run "
                  "`catclean config docs`", file=sys.stderr)
            return 1
        return 0
    README_PATH.write_text(text)
    print(f"wrote {README_PATH}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    section = cfg
    for part in (args.key.split(".") if args.key else []):
        if not isinstance(section, dict) or part not in section:
            raise ConfigError(f"no config key {args.key!r}")
        section = section[part]
    print(yaml.safe_dump(section, sort_keys=False), end="")
    return 0


def _register_config(sub) -> None:
    parser = sub.add_parser("config", help="the configuration: resolved values, reference")
    commands = parser.add_subparsers(dest="command", required=True)
    docs = commands.add_parser("docs", help="write config/README.md from the schema")
    docs.add_argument("--check", action="store_true",
                      help="only check that config/README.md is up to date")
    docs.set_defaults(func=_config_docs)
    show = commands.add_parser("show", help="print the resolved config (or one key of it)")
    add_config_arguments(show)
    show.add_argument("key", nargs="?", default=None, help="dotted key, e.g. shreds.presets")
    show.set_defaults(func=_config_show)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catclean", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    _register_config(sub)
    resources.register(sub)
    compare.register(sub)
    for stage in STAGES:
        try:
            module = importlib.import_module(f"catclean.{stage}.commands")
        except ModuleNotFoundError as exc:
            if exc.name in (f"catclean.{stage}", f"catclean.{stage}.commands"):
                continue  # a stage without commands
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError) as exc:
        # a bad config key or a missing input: one line naming it, not a traceback
        print(f"catclean: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
