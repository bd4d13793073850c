"""``catclean morphology train | evaluate | segment``: the Mask R-CNN of paper 003 outside
Snakemake.

Each command calls the functions of :mod:`catclean.morphology.stage` that the rules call,
with the resolved config (``morphology`` section, chosen preset); options only override
config keys. This is the one command line of the stage (it replaces the former
``python -m catclean.morphology.evaluate``).

Examples
--------
The recorded ``small`` run of docs/morphology.md (240 fields, ~250 steps)::

    catclean morphology train --preset small --fields 240 --train-steps 250 \\
        --out results/morphology
    catclean morphology evaluate --out results/morphology

Segment the hosts of a finished run with that model::

    catclean morphology segment --model results/morphology/morphology_maskrcnn.json \\
        --hosts results/synthetic/hosts/hosts.parquet \\
        --field results/synthetic/fields/legacy/dr9/100004.fits --out results/morphology/hosts

Live imaging (rule ``fetch_host_images``; needs network)::

    catclean morphology fetch-images --config config/live.yaml \
        --hosts results/live/hosts/hosts.parquet --out results/live/morphology/_hosts
    catclean morphology segment --config config/live.yaml --model <model JSON> \
        --hosts results/live/hosts/hosts.parquet \
        --images results/live/morphology/_hosts/images.npz --out results/live/morphology/_hosts
"""

from __future__ import annotations

from pathlib import Path

from ..cli import add_config_arguments, config_from_args

_FLAGS = {"preset": "preset", "fields": "n_fields", "train_steps": "train_steps",
          "mask_source": "mask_source", "min_score": "min_score", "batch_size": "batch_size"}


def _overrides(args) -> dict:
    """Config overrides from the command's own flags (flags left out change nothing)."""
    morph = {key: getattr(args, flag) for flag, key in _FLAGS.items()
             if getattr(args, flag, None) is not None}
    return {"morphology": morph} if morph else {}


def _setup(args, config):
    from ..runtime import setup

    return setup(args.log, threads=args.threads or config["morphology"]["threads"],
                 seed=config["seed"], tensorflow=True)


def _paths(out) -> dict:
    out = Path(out)
    return {"fields": out / "fields.npz", "model": out / "morphology_maskrcnn.json",
            "history": out / "train_history.json", "metrics": out / "metrics.json"}


def train(args) -> int:
    from ..config import preset_settings
    from .stage import make_fields
    from .stage import train as train_model

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config)
    m, paths = config["morphology"], _paths(args.out)
    if not paths["fields"].exists():
        make_fields(m["n_fields"], m["field_size"], m["pixscale"], m["truth_level"],
                    m["split"], config["seed"], args.threads or m["threads"], paths["fields"])
    train_model(paths["fields"], preset_settings(config, "morphology"), m["train_steps"],
                m["mask_source"], config["seed"], paths["model"], paths["history"])
    return 0


def evaluate(args) -> int:
    from .stage import evaluate_model

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config)
    m, paths, out = config["morphology"], _paths(args.out), Path(args.out)
    evaluate_model(paths["fields"], args.model or paths["model"], mask_source=m["mask_source"],
                   noise_scales=m["noise_scales"], min_score=m["min_score"],
                   batch_size=m["batch_size"], pixscale=m["pixscale"], seed=config["seed"],
                   metrics_path=paths["metrics"], detections_path=out / "detections.png",
                   pr_path=out / "precision_recall.png",
                   centroid_path=out / "centroid_offsets.png",
                   noise_path=out / "accuracy_vs_noise.png")
    return 0


def segment(args) -> int:
    from ..cutouts.build import field_paths_from_inputs
    from .stage import segment as segment_hosts

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config)
    m, out = config["morphology"], Path(args.out)
    segment_hosts(args.hosts, field_paths_from_inputs(args.field or []), args.model,
                  size=m["field_size"], pixscale=m["pixscale"], min_score=m["min_score"],
                  batch_size=m["batch_size"], table_path=out / "hosts.parquet",
                  masks_path=out / "masks.npz", images_path=args.images)
    return 0


def fetch_images(args) -> int:
    from ..runtime import setup
    from .host_images import fetch

    config = config_from_args(args)
    setup(args.log, threads=1, seed=config["seed"])
    m, services = config["morphology"], dict(config["services"])
    # as the workflow resolves it (workflow/rules/catalog_inputs.smk, SERVICES)
    services["cache_dir"] = (services["cache_dir"]
                             or f"{config['results_dir']}/{config['run_name']}/cache")
    release = config["surveys"][config["cutouts"]["imaging_survey"]]["release"]
    fetch(args.hosts, services, release, size=m["field_size"], pixscale=m["pixscale"],
          out_path=Path(args.out) / "images.npz")
    return 0


def register(subparsers) -> None:
    stage = subparsers.add_parser("morphology", help="Mask R-CNN host morphology and "
                                  "segmentation (paper 003)")
    sub = stage.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="simulate fields (unless <out>/fields.npz exists) and "
                        "train the network (morphology preset, fixed steps)")
    ev = sub.add_parser("evaluate", help="held-out metrics and figures of a trained network")
    sg = sub.add_parser("segment", help="segment hosts: host table + masks")
    fi = sub.add_parser("fetch-images", help="live: every host's Legacy viewer cutout.jpg "
                        "at morphology.field_size / pixscale -> <out>/images.npz")
    add_config_arguments(fi)
    fi.add_argument("--hosts", required=True, help="hosts table (NSAID, RA, DEC)")
    fi.add_argument("--out", required=True, help="directory for images.npz")
    fi.set_defaults(func=fetch_images)
    for p in (tr, ev, sg):
        add_config_arguments(p)
        p.add_argument("--min-score", type=float, help="morphology.min_score")
        p.add_argument("--batch-size", type=int, help="morphology.batch_size (inference)")
    for p in (tr, ev):
        p.add_argument("--out", required=True, help="directory of fields.npz, the model, "
                       "train_history.json, metrics.json and the figures")
        p.add_argument("--mask-source", choices=("otsu", "truth"), help="morphology.mask_source")
    tr.add_argument("--preset", help="morphology.preset (tiny | small | paper | your own)")
    tr.add_argument("--fields", type=int, help="morphology.n_fields")
    tr.add_argument("--train-steps", type=int, help="morphology.train_steps")
    tr.set_defaults(func=train)
    ev.add_argument("--model", help="model JSON (default <out>/morphology_maskrcnn.json)")
    ev.set_defaults(func=evaluate)
    sg.add_argument("--model", required=True, help="model JSON written by `train`")
    sg.add_argument("--hosts", required=True, help="hosts table (NSAID, RA, DEC)")
    sg.add_argument("--field", action="append",
                    help="rendered Legacy field <NSAID>.fits (repeatable)")
    sg.add_argument("--images", help="images.npz of `fetch-images` (live imaging; replaces "
                    "--field)")
    sg.add_argument("--out", required=True, help="directory for hosts.parquet, masks.npz")
    sg.set_defaults(func=segment)
