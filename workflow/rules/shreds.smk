# Shred CNN (paper 001, Di Teodoro, Peek & Wu): a synthetic training sky -> held-out test +
# k-fold CV training -> ROC / accuracy / example figures -> p_shred for every candidate
# that passes the cuts. Optionally the authors' released SavedModel scores instead
# (shreds.model.kind: savedmodel). See docs/shreds.md. Every rule calls one function of
# catclean.shreds.stage.

from catclean.shreds.model import SHIPPED_SHRED_MODEL

SHREDS = config["shreds"]
SHREDS_DIR = f"{RESULTS}/shreds/_model"
SHREDS_MODEL_KIND = SHREDS["model"]["kind"]
SHREDS_LABELED = SHREDS["training"]["source"] == "labeled"
if SHREDS_MODEL_KIND in ("keras", "savedmodel") and not SHREDS["model"]["path"]:
    raise WorkflowError(f"shreds.model.kind={SHREDS_MODEL_KIND!r} needs shreds.model.path")
# the model that scores: trained here, shipped with catclean, or the configured file
SHREDS_MODEL = {
    "trained": f"{SHREDS_DIR}/shred_cnn.keras",
    "shipped": str(SHIPPED_SHRED_MODEL),
}.get(SHREDS_MODEL_KIND, SHREDS["model"]["path"])


rule make_shred_training_set:
    input:
        # the user's labeled CSV when the set is built from their cutouts
        unpack(lambda wc: {"csv": SHREDS["training"]["labeled"]["csv"]} if SHREDS_LABELED else {}),
    output:
        f"{SHREDS_DIR}/training_set.npz",
    params:
        training=SHREDS["training"],
        seed=config["seed"],
        rgb_size=config["cutouts"]["rgb_size"],
        rgb_pixscale=config["cutouts"]["rgb_pixscale"],
        cosmology=config["cosmology"],
        radius_kpc=config["association"]["radius_kpc"],
    threads: SHREDS["threads"]
    log:
        f"{LOGS}/shreds/make_shred_training_set.log",
    benchmark:
        f"{BENCHMARKS}/shreds/make_shred_training_set.tsv"
    conda:
        "../../envs/sky.yaml"
    script:
        "../../scripts/make_shred_training_set.py"


rule train_shred_cnn:
    input:
        rules.make_shred_training_set.output[0],
    output:
        model=f"{SHREDS_DIR}/shred_cnn.keras",
        cv=f"{SHREDS_DIR}/cv.json",
        # every CV fold's model: their spread is p_shred_std
        folds=directory(f"{SHREDS_DIR}/folds"),
    params:
        settings=preset_settings(config, "shreds"),
        seed=config["seed"],
    threads: SHREDS["threads"]
    log:
        f"{LOGS}/shreds/train_shred_cnn.log",
    benchmark:
        f"{BENCHMARKS}/shreds/train_shred_cnn.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/train_shred_cnn.py"


rule prepare_shred_inference:
    input:
        model=SHREDS_MODEL,
        # the model's own training cutouts: int8 calibration and the accuracy guards
        data=rules.make_shred_training_set.output[0],
    output:
        directory(f"{SHREDS_DIR}/inference"),
    params:
        seed=config["seed"],
        threshold=SHREDS["threshold"],
        batch_size=SHREDS["batch_size"],
        calibration_cutouts=SHREDS["inference"]["calibration_cutouts"],
        check_cutouts=SHREDS["inference"]["check_cutouts"],
    threads: SHREDS["threads"]
    log:
        f"{LOGS}/shreds/prepare_shred_inference.log",
    benchmark:
        f"{BENCHMARKS}/shreds/prepare_shred_inference.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/prepare_shred_inference.py"


rule evaluate_shreds:
    input:
        cv=rules.train_shred_cnn.output.cv,
        data=rules.make_shred_training_set.output[0],
    output:
        metrics=f"{SHREDS_DIR}/metrics.json",
        roc=report(
            f"{RESULTS}/report/shreds_roc.png",
            caption="../report/shreds_roc.rst",
            category="Shreds",
        ),
        examples=report(
            f"{RESULTS}/report/shreds_examples.png",
            caption="../report/shreds_examples.rst",
            category="Shreds",
        ),
    params:
        seed=config["seed"],
    log:
        f"{LOGS}/shreds/evaluate_shreds.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/evaluate_shreds.py"


rule evaluate_shreds_real:
    input:
        model=SHREDS_MODEL,
        labels=repo_file(SHREDS["real_check"]["labels"]),
    output:
        json=f"{SHREDS_DIR}/real_validation.json",
        reliability=report(
            f"{RESULTS}/report/shreds_reliability_real.png",
            caption="../report/shreds_reliability_real.rst",
            category="Shreds",
        ),
        examples=report(
            f"{RESULTS}/report/shreds_examples_real.png",
            caption="../report/shreds_examples_real.rst",
            category="Shreds",
        ),
    params:
        images=SHREDS["real_check"]["images"],
        threshold=SHREDS["threshold"],
    threads: SHREDS["threads"]
    log:
        f"{LOGS}/shreds/evaluate_shreds_real.log",
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/evaluate_shreds_real.py"


rule shreds_realism:
    input:
        unpack(realism_run_inputs),
        set=rules.make_shred_training_set.output[0],
    output:
        json=f"{SHREDS_DIR}/realism.json",
        statistics=report(
            f"{RESULTS}/report/shreds_realism_statistics.png",
            caption="../report/shreds_realism_statistics.rst",
            category="Shreds",
        ),
        gallery=report(
            f"{RESULTS}/report/shreds_realism_gallery.png",
            caption="../report/shreds_realism_gallery.rst",
            category="Shreds",
        ),
        extremes=report(
            f"{RESULTS}/report/shreds_realism_extremes.png",
            caption="../report/shreds_realism_extremes.rst",
            category="Shreds",
        ),
    params:
        images=SHREDS["real_check"]["images"],
        against=SHREDS["real_check"]["realism_against"],
        methods=SHREDS["real_check"]["realism_methods"],
        n=SHREDS["real_check"]["realism_n"],
        seed=config["seed"],
    threads: SHREDS["threads"]
    log:
        f"{LOGS}/shreds/shreds_realism.log",
    benchmark:
        f"{BENCHMARKS}/shreds/shreds_realism.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/shreds_realism.py"


rule score_shreds:
    input:
        # bf16 / int8 forms and their accuracy guards (not for SavedModels: float32 only)
        unpack(
            lambda wc: {}
            if SHREDS_MODEL_KIND == "savedmodel"
            else {"inference": rules.prepare_shred_inference.output[0]}
        ),
        # the trained model's CV folds (p_shred_std)
        unpack(
            lambda wc: {"folds": rules.train_shred_cnn.output.folds}
            if SHREDS_MODEL_KIND == "trained"
            else {}
        ),
        cuts=partition_path("cuts"),
        store=rules.cutouts.output.rgb,
        # the trained model, the shipped one, or the configured .keras file / SavedModel
        model=SHREDS_MODEL,
    output:
        partition_path("shreds"),
    params:
        kind="savedmodel" if SHREDS_MODEL_KIND == "savedmodel" else "keras",
        threshold=SHREDS["threshold"],
        batch_size=SHREDS["batch_size"],
        precision=SHREDS["inference"]["precision"],
    threads: 1
    log:
        f"{LOGS}/shreds/score_{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{BENCHMARKS}/shreds/score_{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/score_shreds.py"


rule shreds_summary:
    input:
        # per survey: its shreds and cuts partition files
        unpack(
            lambda wc: {
                survey: expand(
                    [partition_path("shreds"), partition_path("cuts")],
                    survey=survey,
                    release=RELEASE[survey],
                    hpx=partitions(),
                )
                for survey in SURVEYS
            }
        ),
    output:
        json=f"{RESULTS}/shreds/_summary/fractions.json",
        html=report(
            f"{RESULTS}/report/shreds_fractions.html",
            caption="../report/shreds_fractions.rst",
            category="Shreds",
        ),
    params:
        surveys=SURVEYS,
        model_kind=SHREDS_MODEL_KIND,
    log:
        f"{LOGS}/shreds/shreds_summary.log",
    benchmark:
        f"{BENCHMARKS}/shreds/shreds_summary.tsv"
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/shreds_summary.py"


if SHREDS["enabled"]:
    CATALOG_COLUMNS["shreds"] = partition_path("shreds")
    ALL_TARGETS += [rules.shreds_summary.output.json, rules.shreds_summary.output.html]
    # real eye-labelled cutouts: only where the directory exists (../shared/real in CI)
    real_images = os.path.isdir(SHREDS["real_check"]["images"] or "")
    if SHREDS_MODEL_KIND != "savedmodel" and real_images:
        ALL_TARGETS += [rules.evaluate_shreds_real.output.reliability]
    # how real the synthetic training sky looks (two-sample test, issue 11): against the
    # real cutout directory where it exists, or against the run's own cutouts
    realism_real = SHREDS["real_check"]["realism_against"] == "run" or real_images
    if (SHREDS_MODEL_KIND != "savedmodel" and not SHREDS_LABELED and realism_real
            and SHREDS["real_check"]["realism_methods"]):
        ALL_TARGETS += [rules.shreds_realism.output.json]
    if SHREDS_MODEL_KIND == "trained":
        ALL_TARGETS += [
            rules.evaluate_shreds.output.metrics,
            rules.evaluate_shreds.output.roc,
            rules.evaluate_shreds.output.examples,
        ]
