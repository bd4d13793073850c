"""``catclean som train | map``: the rotation/flip-invariant SOM (paper 004) outside Snakemake.

Each command calls the function of :mod:`catclean.som.stage` that the rule calls, with the
resolved config (``som`` section, chosen preset); options only override config keys.

Examples
--------
Train on the grz cutout stores of a finished run (store and cut table given in the same
partition order) with the paper's schedule::

    catclean som train --preset paper --out results/som_paper \\
        --store results/synthetic/cutouts/legacy/dr9/hpx=6807/grz \\
        --cuts results/synthetic/cuts/legacy/dr9/hpx=6807.parquet

Map one partition onto it, with p_shred_som from a neuron table (annotate output or your
own neuron-label CSV)::

    catclean som map --som results/som_paper/som.bin --out mapped.parquet \\
        --store results/synthetic/cutouts/legacy/dr9/hpx=6807/grz \\
        --cuts results/synthetic/cuts/legacy/dr9/hpx=6807.parquet --neurons neurons.csv
"""

from __future__ import annotations

from pathlib import Path

from ..cli import add_config_arguments, config_from_args


def _overrides(args) -> dict:
    """Config overrides from the command's own flags (flags left out change nothing)."""
    som: dict = {}
    for flag in ("preset", "batch_size", "train_sources"):
        if getattr(args, flag, None) is not None:
            som[flag] = getattr(args, flag)
    return {"som": som} if som else {}


def _setup(args, config):
    from ..runtime import setup

    return setup(args.log, threads=args.threads or config["som"]["threads"], seed=config["seed"])


def train(args) -> int:
    from ..config import preset_settings
    from .stage import train as train_som

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config)
    if len(args.store) != len(args.cuts):
        raise SystemExit("catclean som train: give one --cuts per --store")
    out = Path(args.out)
    som = config["som"]
    train_som(list(zip(args.store, args.cuts)), preset_settings(config, "som"),
              som["train_sources"], config["seed"], out / "som.bin", out / "som.json",
              out / "train_images.bin" if som["write_pink_files"] else None)
    return 0


def map_(args) -> int:
    from ..config import preset_settings
    from .stage import catalog_columns, map_partition

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config)
    out = Path(args.out)
    mapping = out.with_name(out.stem + ".mapping.parquet") if args.neurons else out
    map_partition(args.cuts, args.store, args.som, preset_settings(config, "som"),
                  config["som"]["batch_size"], mapping)
    if args.neurons:
        catalog_columns(mapping, args.neurons, out)
    return 0


def register(subparsers) -> None:
    stage = subparsers.add_parser("som", help="rotation/flip-invariant SOM over cutouts "
                                  "(paper 004, PINK)")
    sub = stage.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a SOM on grz cutout stores (som preset)")
    add_config_arguments(tr)
    tr.add_argument("--store", action="append", required=True,
                    help="grz CutoutStore directory (repeatable)")
    tr.add_argument("--cuts", action="append", required=True,
                    help="the store's partition cut table (repeatable, same order)")
    tr.add_argument("--preset", help="som.preset (small | paper | your own)")
    tr.add_argument("--train-sources", choices=("all", "passes_cuts"), help="som.train_sources")
    tr.add_argument("--out", required=True,
                    help="directory for som.bin (PINK v2), som.json [, train_images.bin]")
    tr.set_defaults(func=train)
    mp = sub.add_parser("map", help="map one partition's cutouts onto a SOM")
    add_config_arguments(mp)
    mp.add_argument("--som", required=True, help="SOM file written by `catclean som train`")
    mp.add_argument("--store", required=True, help="grz CutoutStore directory")
    mp.add_argument("--cuts", required=True, help="the partition's cut table (source_id)")
    mp.add_argument("--neurons", help="neuron table / label CSV: adds p_shred_som")
    mp.add_argument("--preset", help="som.preset the SOM was trained with")
    mp.add_argument("--batch-size", type=int, help="som.batch_size")
    mp.add_argument("--out", required=True, help="Parquet, one row per source_id")
    mp.set_defaults(func=map_)
