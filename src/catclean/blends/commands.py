"""``catclean blends ...``: the blends stage's functions on the command line.

``catclean blends evaluate --test T.npz --models DIR --out DIR`` scores saved networks
(``DIR/blend2flux.keras``, ``unet.keras``, ``blend2mask2flux.keras``) and the sep
baseline on a saved test set with :func:`catclean.blends.stage.evaluate`, the function of
rule ``evaluate_blends``; the settings come from the resolved config (``--config``,
``--set blends.preset=candels``, ...).
"""

from __future__ import annotations

from pathlib import Path

from ..cli import add_config_arguments, config_from_args

EVALUATION_FILES = {"metrics": "metrics.json", "csv": "metrics.csv", "html": "metrics.html",
                    "fig5": "fig5.png", "fig6": "fig6.png", "fig7": "fig7.png",
                    "fig8": "fig8.png", "fig_iou": "iou.png"}


def evaluate(args) -> int:
    from ..runtime import setup
    from .settings import stage_settings
    from .stage import NETWORKS
    from .stage import evaluate as run_evaluation

    config = config_from_args(args)
    setup(args.log, threads=args.threads or config["blends"]["threads"], seed=config["seed"],
          tensorflow=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = {name: Path(args.models) / f"{name}.keras" for name in NETWORKS}
    run_evaluation(args.test, {k: p for k, p in models.items() if p.exists()},
                   stage_settings(config), {k: out / f for k, f in EVALUATION_FILES.items()})
    return 0


def register(subparsers) -> None:
    stage = subparsers.add_parser("blends", help="photometry of blended pairs (paper 002)")
    sub = stage.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="networks vs the sep baseline on a saved test set")
    add_config_arguments(ev)
    ev.add_argument("--test", required=True, help="test blends .npz (rule make_blends)")
    ev.add_argument("--models", required=True,
                    help="directory of blend2flux / unet / blend2mask2flux .keras files")
    ev.add_argument("--out", required=True, help="directory for metrics and figures")
    ev.set_defaults(func=evaluate)
