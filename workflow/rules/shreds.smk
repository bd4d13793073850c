# Shred CNN (paper 001, Di Teodoro, Peek & Wu): a synthetic training sky -> held-out test +
# k-fold CV training -> ROC / accuracy / example figures -> p_shred for every candidate
# that passes the cuts. Optionally the authors' released SavedModel scores instead
# (shreds.model.kind: savedmodel). See docs/shreds.md.

from catclean.shreds import smk as shreds_smk

SHREDS = config.get("shreds", {})
SHREDS_DIR = f"{RESULTS}/shreds/_model"
SHREDS_MODEL_KIND = shreds_smk.model_kind(SHREDS)


rule make_shred_training_set:
    input:
        unpack(lambda wc: shreds_smk.training_inputs(SHREDS)),
    output:
        f"{SHREDS_DIR}/training_set.npz",
    params:
        shreds=SHREDS,
        seed=config["seed"],
        cosmology=config["cosmology"],
        radius_kpc=config["association"]["radius_kpc"],
        cutouts=config.get("cutouts", {}),
    threads: SHREDS.get("threads", 2)
    log:
        f"{RESULTS}/logs/shreds/make_shred_training_set.log",
    benchmark:
        f"{RESULTS}/benchmarks/shreds/make_shred_training_set.tsv"
    conda:
        "../../envs/sky.yaml"
    script:
        "../../scripts/shreds_training_set.py"


rule train_shred_cnn:
    input:
        f"{SHREDS_DIR}/training_set.npz",
    output:
        model=f"{SHREDS_DIR}/shred_cnn.keras",
        cv=f"{SHREDS_DIR}/cv.json",
    params:
        shreds=SHREDS,
        seed=config["seed"],
    threads: SHREDS.get("threads", 2)
    log:
        f"{RESULTS}/logs/shreds/train_shred_cnn.log",
    benchmark:
        f"{RESULTS}/benchmarks/shreds/train_shred_cnn.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/shreds_train.py"


rule evaluate_shreds:
    input:
        cv=f"{SHREDS_DIR}/cv.json",
        data=f"{SHREDS_DIR}/training_set.npz",
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
        f"{RESULTS}/logs/shreds/evaluate_shreds.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/shreds_evaluate.py"


rule score_shreds:
    input:
        cuts=f"{RESULTS}/cuts/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
        store=f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}/rgb",
        model=shreds_smk.model_path(SHREDS, SHREDS_DIR),
    output:
        f"{RESULTS}/shreds/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
    params:
        shreds=SHREDS,
        kind="keras" if SHREDS_MODEL_KIND in ("trained", "keras") else "savedmodel",
        seed=config["seed"],
    threads: 1
    log:
        f"{RESULTS}/logs/shreds/score_{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/shreds/score_{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/shreds_score.py"


rule shreds_summary:
    input:
        unpack(lambda wc: shreds_smk.summary_inputs(RESULTS, SURVEYS, RELEASE, partitions())),
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
        f"{RESULTS}/logs/shreds/shreds_summary.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/shreds_summary.py"


if SHREDS.get("enabled", False):
    CATALOG_COLUMNS["shreds"] = f"{RESULTS}/shreds/{{survey}}/{{release}}/hpx={{hpx}}.parquet"
    ALL_TARGETS += [
        f"{RESULTS}/shreds/_summary/fractions.json",
        f"{RESULTS}/report/shreds_fractions.html",
    ]
    if SHREDS_MODEL_KIND == "trained":
        ALL_TARGETS += [
            f"{SHREDS_DIR}/metrics.json",
            f"{RESULTS}/report/shreds_roc.png",
            f"{RESULTS}/report/shreds_examples.png",
        ]
