# Photometry of blended pairs (paper 002, Boucaud et al.): GalSim galaxies -> blends ->
# blend2flux / U-Net / blend2mask2flux vs the sep cold/hot baseline -> metrics + plots,
# and deblended fluxes for catalog sources flagged as blended. See docs/blends.md.
# Every rule calls one function of catclean.blends.stage.

from catclean.blends import settings as blends_settings

BLENDS = config["blends"]
BLENDS_SETTINGS = blends_settings.stage_settings(config)
BLENDS_DIR = f"{RESULTS}/blends/_sim"
BLENDS_MODELS = f"{RESULTS}/blends/_models"
BLENDS_METRICS = f"{RESULTS}/blends/_metrics"


rule make_blends:
    output:
        galaxies=f"{BLENDS_DIR}/galaxies.parquet",
        train=f"{BLENDS_DIR}/train.npz",
        val=f"{BLENDS_DIR}/val.npz",
        test=f"{BLENDS_DIR}/test.npz",
        examples=report(
            f"{RESULTS}/report/blends_examples.png",
            caption="../report/blends_examples.rst",
            category="Blends",
        ),
    params:
        settings=blends_settings.select(BLENDS_SETTINGS, blends_settings.SIMULATION_KEYS),
        seed=config["seed"],
    log:
        f"{LOGS}/blends/make_blends.log",
    benchmark:
        f"{BENCHMARKS}/blends/make_blends.tsv"
    conda:
        "../../envs/sim.yaml"
    script:
        "../../scripts/make_blends.py"


rule train_blend_models:
    input:
        train=rules.make_blends.output.train,
        val=rules.make_blends.output.val,
    output:
        blend2flux=f"{BLENDS_MODELS}/blend2flux.keras",
        unet=f"{BLENDS_MODELS}/unet.keras",
        blend2mask2flux=f"{BLENDS_MODELS}/blend2mask2flux.keras",
        history=f"{BLENDS_MODELS}/history.json",
    params:
        settings=blends_settings.select(BLENDS_SETTINGS, blends_settings.TRAINING_KEYS),
        seed=config["seed"],
    threads: BLENDS["threads"]
    log:
        f"{LOGS}/blends/train_blend_models.log",
    benchmark:
        f"{BENCHMARKS}/blends/train_blend_models.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/train_blend_models.py"


rule evaluate_blends:
    input:
        test=rules.make_blends.output.test,
        blend2flux=rules.train_blend_models.output.blend2flux,
        unet=rules.train_blend_models.output.unet,
        blend2mask2flux=rules.train_blend_models.output.blend2mask2flux,
    output:
        metrics=f"{BLENDS_METRICS}/metrics.json",
        csv=f"{BLENDS_METRICS}/metrics.csv",
        html=report(
            f"{RESULTS}/report/blends_metrics.html",
            caption="../report/blends_metrics.rst",
            category="Blends",
        ),
        fig5=report(
            f"{RESULTS}/report/blends_fig5.png",
            caption="../report/blends_fig5.rst",
            category="Blends",
        ),
        fig6=report(
            f"{RESULTS}/report/blends_fig6.png",
            caption="../report/blends_fig6.rst",
            category="Blends",
        ),
        fig7=report(
            f"{RESULTS}/report/blends_fig7.png",
            caption="../report/blends_fig7.rst",
            category="Blends",
        ),
        fig8=report(
            f"{RESULTS}/report/blends_fig8.png",
            caption="../report/blends_fig8.rst",
            category="Blends",
        ),
        fig_iou=report(
            f"{RESULTS}/report/blends_iou.png",
            caption="../report/blends_iou.rst",
            category="Blends",
        ),
    params:
        settings=blends_settings.select(BLENDS_SETTINGS, blends_settings.EVALUATION_KEYS),
    threads: BLENDS["threads"]
    log:
        f"{LOGS}/blends/evaluate_blends.log",
    benchmark:
        f"{BENCHMARKS}/blends/evaluate_blends.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/evaluate_blends.py"


rule deblend:
    input:
        cuts=partition_path("cuts"),
        store=rules.cutouts.output.grz,
        model=getattr(rules.train_blend_models.output, BLENDS["apply_model"]),
    output:
        partition_path("blends"),
    params:
        apply=BLENDS["apply"],
        pixel_scale=BLENDS_SETTINGS["sim"]["pixel_scale"],
        model_name=BLENDS["apply_model"],
    threads: 1
    log:
        f"{LOGS}/blends/deblend_{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{BENCHMARKS}/blends/deblend_{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/deblend.py"


if BLENDS["enabled"]:
    CATALOG_COLUMNS["blends"] = partition_path("blends")
    ALL_TARGETS += [
        rules.evaluate_blends.output.metrics,
        rules.evaluate_blends.output.html,
        rules.evaluate_blends.output.fig5,
        rules.evaluate_blends.output.fig6,
        rules.evaluate_blends.output.fig7,
        rules.evaluate_blends.output.fig8,
        rules.evaluate_blends.output.fig_iou,
        rules.make_blends.output.examples,
    ]
