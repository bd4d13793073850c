"""``catclean shreds make-set | train | prepare | score``: the shred CNN outside Snakemake.

Each command calls the function of :mod:`catclean.shreds.stage` that the rule calls, with
the resolved config; options only override config keys (no defaults of their own).

Examples
--------
Build a synthetic training sky in resumable chunks and train the paper-size model
(docs/shreds.md)::

    catclean shreds make-set --hosts 180 --chunk 20 --workers 2 \\
        --set seed=2026 --set shreds.training.field_max_pix=1100 \\
        --out results/shreds_paper2/train_set
    catclean shreds train --data 'results/shreds_paper2/train_set*.part*.npz' \\
        --preset paper --set shreds.presets.paper.run_folds=1 \\
        --set shreds.presets.paper.precision=mixed_bfloat16 --out results/shreds_paper2/run2

Train on your own labeled cutouts (CSV ``source_id,label`` + ``<source_id>.png``)::

    catclean shreds train --csv labels.csv --images cutouts/ --preset paper --out my_model/

Prepare the fast inference forms of a model (int8 ONNX, inference card with the bf16 /
int8 accuracy guards; docs/shreds.md "Inference precision")::

    catclean shreds prepare --model my_model/shred_cnn.keras \\
        --data my_model/training_set.npz --out my_model/inference

Score a directory of Legacy-viewer cutouts (PNG/JPEG, 128 px over 60")::

    catclean shreds score --model my_model/shred_cnn.keras --images cutouts/ --out p.csv
"""

from __future__ import annotations

from pathlib import Path

from ..cli import command, config_from_args, stage_commands
from ..config import ConfigError


def _overrides(args) -> dict:
    """Config overrides from the command's own flags (flags left out change nothing)."""
    shreds: dict = {}
    training: dict = {}
    if getattr(args, "preset", None) is not None:
        shreds["preset"] = args.preset
    if getattr(args, "hosts", None) is not None:
        training["n_hosts"] = args.hosts
    if getattr(args, "csv", None) is not None:
        training.update(source="labeled", labeled={"csv": args.csv, "images": args.images})
    if training:
        shreds["training"] = training
    real_check = {k: getattr(args, flag) for k, flag in (("images", "real"), ("labels", "labels"))
                  if getattr(args, flag, None) is not None}
    if real_check:
        shreds["real_check"] = real_check
    for flag in ("threshold", "batch_size"):
        if getattr(args, flag, None) is not None:
            shreds[flag] = getattr(args, flag)
    return {"shreds": shreds} if shreds else {}


def _setup(args, config, tensorflow: bool):
    from ..runtime import setup

    return setup(args.log, threads=args.threads or config["shreds"]["threads"],
                 seed=config["seed"], tensorflow=tensorflow)


def _make_set(args, config, out) -> None:
    from .stage import make_training_set

    make_training_set(out, config["shreds"]["training"], config["seed"],
                      config["cutouts"]["rgb_size"], config["cutouts"]["rgb_pixscale"],
                      config["association"]["radius_kpc"], config["cosmology"],
                      workers=args.workers or config["shreds"]["threads"],
                      chunk=getattr(args, "chunk", None) or 0)


def make_set(args) -> int:
    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config, tensorflow=False)
    _make_set(args, config, args.out)
    return 0


def train(args) -> int:
    from ..config import preset_settings
    from .stage import train as train_model

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config, tensorflow=True)
    out = Path(args.out)
    data_path = args.data
    if data_path is None:  # build the configured set (e.g. --csv/--images) first
        data_path = out / "training_set.npz"
        _make_set(args, config, data_path)
    data = _training_set(data_path, config)
    train_model(data, preset_settings(config, "shreds"), config["seed"],
                args.threads or config["shreds"]["threads"], out / "shred_cnn.keras",
                out / "cv.json", init_model=args.init)
    return 0


def score(args) -> int:
    from .stage import score_images

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config, tensorflow=True)
    score_images(args.model, args.images, config["shreds"]["threshold"],
                 config["shreds"]["batch_size"], args.out)
    return 0


def prepare(args) -> int:
    from .stage import prepare_inference

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config, tensorflow=True)
    sh = config["shreds"]
    card = prepare_inference(args.model, args.data, args.out, config["seed"], sh["threshold"],
                             sh["batch_size"], sh["inference"]["calibration_cutouts"],
                             sh["inference"]["check_cutouts"])
    for name, entry in card["precisions"].items():
        print(name, "offered" if entry["offered"] else "not offered",
              entry.get("cutouts_per_s"), entry.get("max_dp"), entry.get("reason", ""))
    print("auto:", card["auto"])
    return 0


def finetune(args) -> int:
    from ..config import preset_settings
    from .model import ShredArch
    from .real import fine_tune
    from .train import cross_validate, save_json

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config, tensorflow=True)
    settings = preset_settings(config, "shreds")
    if args.learning_rate is not None:
        settings["learning_rate"] = args.learning_rate
    arch = ShredArch.from_config(settings)
    cfg = _train_config(args, config, settings)
    x, y = _finetune_split(config)
    out = Path(args.out)
    kw = {"model_path": out / "shred_cnn.keras"}
    if args.fold_models:
        kw["fold_models_dir"] = out / "folds"
    if args.rehearsal:
        if not args.model:
            raise ConfigError("--rehearsal needs --model (the model pre-trained on that set)")
        kw["rehearsal_set"] = _training_set(args.rehearsal, config)
        kw["rehearsal_ratio"] = args.rehearsal_ratio
    if args.model:
        res = fine_tune(args.model, x, y, cfg, arch, **kw)
    else:  # the same protocol from random weights: the "real labels only" model
        res = cross_validate(x, y, arch, cfg, **kw)
    res["preset"] = settings["preset"]
    save_json(res, out / "cv.json")
    print("CV test AUC", res["mean"]["auc"], "+-", res["mean"]["auc_std"], "kept",
          res["kept_model"], "(test AUC", res["kept"]["auc"], ")")
    if "synthetic_test" in res:
        print("kept model, synthetic held-out test AUC", res["synthetic_test"]["auc"])
    return 0


def interpolate(args) -> int:
    from ..config import preset_settings
    from .real import interpolate as run
    from .train import save_json

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config, tensorflow=True)
    cfg = _train_config(args, config, preset_settings(config, "shreds"))
    x, y = _finetune_split(config)
    try:
        alphas = [float(a) for a in args.alphas.split(",")]
    except ValueError:
        raise ConfigError(f"--alphas {args.alphas!r}: expected comma-separated numbers in "
                          "[0, 1]") from None
    synthetic = _training_set(args.data, config)
    out = Path(args.out)
    res = run(args.fine_tuned, args.refreshed, alphas, x, y, synthetic, cfg,
              model_path=out / "shred_cnn.keras")
    save_json(res, out / "interpolation.json")
    for m in res["mixes"]:
        print(f"alpha {m['alpha']:.2f}: real test AUC {m['real_test']['auc']:.4f}, "
              f"synthetic test AUC {m['synthetic_test']['auc']:.4f}")
    print("kept alpha", res["kept_alpha"])
    return 0


def evaluate_real(args) -> int:
    from .real import evaluate_real as run

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config, tensorflow=True)
    models = dict(m.split("=", 1) for m in args.model)
    real = config["shreds"]["real_check"]
    res = run(models, _real_images(real), args.out, csv=real["labels"],
              threshold=config["shreds"]["threshold"], tta=not args.no_tta)
    for name, m in res["models"].items():
        print(f"{name}: AUC {m['auc']:.4f} accuracy {m['accuracy']:.3f}"
              + (f"; 8 rotations/flips AUC {m['tta']['auc']:.4f}" if "tta" in m else ""))
    for h in res["heuristics"][:5]:
        print(f"heuristic {h['statistic']}: AUC {h['auc']:.4f}")
    return 0


def realism(args) -> int:
    from .real import eye_classes_of
    from .realism import measure

    config = config_from_args(args, extra=_overrides(args))
    _setup(args, config, tensorflow=True)
    images = _real_images(config["shreds"]["real_check"])
    labels = config["shreds"]["real_check"]["labels"]
    classes = eye_classes_of(images, labels) if args.by_class else None
    # measure prints each discriminator's AUC as it finishes
    measure(args.data, images, args.out, n=args.n, seed=config["seed"],
            folds=args.folds, methods=args.methods.split(","), epochs=args.epochs,
            real_stats=args.real_stats, real_classes=classes, draws=args.draws)
    return 0


def _real_images(real_check: dict) -> str:
    """The real cutout directory of ``shreds.real_check`` (``--real`` overrides it)."""
    if not real_check["images"]:
        raise ConfigError("no real cutouts: set shreds.real_check.images or pass --real")
    return real_check["images"]


def _training_set(path, config) -> dict:
    """A training set (.npz or a glob of make-set parts) balanced as its training run
    balanced it: the config's seed and ``shreds.training.galaxy_fraction``."""
    from .stage import load_training_set

    return load_training_set(path, config["seed"],
                             config["shreds"]["training"]["galaxy_fraction"])


def _train_config(args, config, settings):
    """The protocol of a preset's ``settings`` with the run's seed and threads."""
    from .train import TrainConfig

    return TrainConfig.from_config(settings, seed=config["seed"],
                                   threads=args.threads or config["shreds"]["threads"])


def _finetune_split(config):
    """Images and labels of the real eye labels' fine-tuning split."""
    from .real import load_real_labels, split_xy

    real = config["shreds"]["real_check"]
    return split_xy(load_real_labels(_real_images(real), real["labels"]), "finetune")


def _real_arguments(parser) -> None:
    """The real eye-labelled cutouts' two flags."""
    parser.add_argument("--real", help="directory of the real cutouts "
                        "(shreds.real_check.images)")
    parser.add_argument("--labels", help="eye-label CSV (shreds.real_check.labels)")


def register(subparsers) -> None:
    sub = stage_commands(subparsers, "shreds", help="shred CNN (paper 001)")
    ms = command(sub, "make-set", make_set, help="labeled training cutouts (shreds.training)")
    ms.add_argument("--hosts", type=int, help="shreds.training.n_hosts")
    ms.add_argument("--workers", type=int, help="rendering processes (default shreds.threads)")
    ms.add_argument("--chunk", type=int, help="render hosts this many at a time into "
                    "<out>.partNNN.npz (unbalanced, resumable)")
    ms.add_argument("--out", required=True, help=".npz (or the parts' prefix with --chunk)")
    tr = command(sub, "train", train, help="held-out test + k-fold CV training")
    tr.add_argument("--data", help="training set .npz, or a glob of make-set parts "
                    "(balanced together); default: build the configured set first")
    tr.add_argument("--csv", help="labels CSV (source_id,label): shreds.training.source=labeled")
    tr.add_argument("--images", help="directory of <source_id>.png/.jpg cutouts (with --csv)")
    tr.add_argument("--preset", help="shreds.preset (small | paper | your own)")
    tr.add_argument("--workers", type=int, help="rendering processes when building the set")
    tr.add_argument("--init", help="start every fold from this .keras model's weights (same "
                    "architecture; e.g. the model of an earlier training sky)")
    tr.add_argument("--out", required=True, help="directory for shred_cnn.keras and cv.json")
    pr = command(sub, "prepare", prepare, help="int8 form + inference card (accuracy "
                 "guards of bf16 / int8 against float32) of a .keras model")
    pr.add_argument("--model", required=True, help=".keras shred model")
    pr.add_argument("--data", required=True, help="its training set .npz (calibration, guards)")
    pr.add_argument("--out", required=True, help="directory for card.json and model.int8.onnx")
    sc = command(sub, "score", score, help="score a directory of PNG/JPEG cutouts")
    sc.add_argument("--model", required=True, help=".keras file or SavedModel directory")
    sc.add_argument("--images", required=True, help="directory of <source_id>[_suffix].png/.jpg")
    sc.add_argument("--threshold", type=float, help="shreds.threshold")
    sc.add_argument("--batch-size", type=int, help="shreds.batch_size")
    sc.add_argument("--out", required=True, help="CSV: file, source_id, p_shred, is_shred, reason")
    ft = command(sub, "finetune", finetune, help="fine-tune a model on the real eye labels "
                 "(finetune split, paper protocol); without --model: train on them alone")
    ft.add_argument("--model", help="pre-trained .keras model (synthetic sky)")
    _real_arguments(ft)
    ft.add_argument("--preset", help="shreds.preset of the model's architecture")
    ft.add_argument("--learning-rate", type=float, help="RMSprop learning rate (default: "
                    "the preset's)")
    ft.add_argument("--fold-models", action="store_true", help="save every fold's model")
    ft.add_argument("--rehearsal", help="the pre-training set (.npz or a glob of make-set "
                    "parts, with the pre-training's seed): its cross-validation cutouts are "
                    "mixed into every fold's training part, its held-out test cutouts score "
                    "the kept model")
    ft.add_argument("--rehearsal-ratio", type=float, default=1.0,
                    help="synthetic rehearsal cutouts per real training cutout (default 1)")
    ft.add_argument("--out", required=True, help="directory for shred_cnn.keras and cv.json")
    ip = command(sub, "interpolate", interpolate, help="WiSE-FT: mixes of a fine-tuned model "
                 "and its synthetic refresh, scored on the real and synthetic held-out tests")
    ip.add_argument("--fine-tuned", required=True, help="the fine-tuned .keras model")
    ip.add_argument("--refreshed", required=True, help="the fine-tuned model trained "
                    "further on the synthetic sky (train --init)")
    ip.add_argument("--data", required=True, help="the pre-training set (.npz or a glob of "
                    "make-set parts, with the pre-training's seed)")
    ip.add_argument("--alphas", default="0,0.3,0.5,0.7,1",
                    help="weights of the fine-tuned model, comma-separated (default "
                    "0,0.3,0.5,0.7,1)")
    _real_arguments(ip)
    ip.add_argument("--preset", help="shreds.preset of the models' architecture")
    ip.add_argument("--out", required=True, help="directory for shred_cnn.keras (the kept "
                    "mix) and interpolation.json")
    ev = command(sub, "evaluate-real", evaluate_real, help="models and one-number "
                 "heuristics on the real validation labels, reliability diagram")
    ev.add_argument("--model", action="append", required=True,
                    help="NAME=PATH of a .keras model (repeatable)")
    _real_arguments(ev)
    ev.add_argument("--no-tta", action="store_true",
                    help="skip the mean over the 8 rotations / flips")
    ev.add_argument("--out", required=True, help="folder for real_validation.json and plots")
    rl = command(sub, "realism", realism,
                 help="two-sample AUCs: a training set against real cutouts (docs/realism.md)")
    rl.add_argument("--data", required=True,
                    help="training set .npz with 'images', or a glob of make-set parts")
    rl.add_argument("--real", help="directory of the real cutouts (shreds.real_check.images)")
    rl.add_argument("--n", type=int, default=400, help="synthetic images drawn (seeded)")
    rl.add_argument("--draws", type=int, default=1,
                    help="repeat the trees test on this many seeded draws of --n and "
                    "report their mean and spread")
    rl.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    rl.add_argument("--methods", default="trees,cnn", help="discriminators: trees, cnn")
    rl.add_argument("--epochs", type=int, default=4, help="CNN discriminator epochs")
    rl.add_argument("--by-class", action="store_true",
                    help="also the trees AUC within each class, against the real cutouts' "
                    "eye labels (shreds.real_check.labels)")
    rl.add_argument("--real-stats", default=None,
                    help="Parquet cache of the real cutouts' statistics")
    rl.add_argument("--out", required=True, help="folder for realism.json and the plots")
