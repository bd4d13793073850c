# Photometry of blended pairs (paper 002, Boucaud et al.): GalSim galaxies -> blends ->
# blend2flux / U-Net / blend2mask2flux vs the sep cold/hot baseline -> metrics + plots,
# and deblended fluxes for catalog sources flagged as blended. See docs/blends.md.

from catclean.blends.settings import resolve as _blends_resolve

BLENDS = config.get("blends", {})
BLENDS_SETTINGS = _blends_resolve(BLENDS)  # preset sizes + sim + pairing + baseline only
BLENDS_DIR = f"{RESULTS}/blends/_sim"
BLENDS_MODELS = f"{RESULTS}/blends/_models"
BLENDS_MODEL = BLENDS.get("apply_model", "blend2flux")


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
        settings=BLENDS_SETTINGS,
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/blends/make_blends.log",
    benchmark:
        f"{RESULTS}/benchmarks/blends/make_blends.tsv"
    conda:
        "../../envs/sky.yaml"
    script:
        "../../scripts/blends_make.py"


rule train_blend_models:
    input:
        train=f"{BLENDS_DIR}/train.npz",
        val=f"{BLENDS_DIR}/val.npz",
    output:
        blend2flux=f"{BLENDS_MODELS}/blend2flux.keras",
        unet=f"{BLENDS_MODELS}/unet.keras",
        blend2mask2flux=f"{BLENDS_MODELS}/blend2mask2flux.keras",
        history=f"{BLENDS_MODELS}/history.json",
    params:
        settings=BLENDS_SETTINGS,
        seed=config["seed"],
    threads: BLENDS.get("threads", 2)
    log:
        f"{RESULTS}/logs/blends/train_blend_models.log",
    benchmark:
        f"{RESULTS}/benchmarks/blends/train_blend_models.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/blends_train.py"


rule evaluate_blends:
    input:
        test=f"{BLENDS_DIR}/test.npz",
        blend2flux=f"{BLENDS_MODELS}/blend2flux.keras",
        unet=f"{BLENDS_MODELS}/unet.keras",
        blend2mask2flux=f"{BLENDS_MODELS}/blend2mask2flux.keras",
    output:
        metrics=f"{RESULTS}/blends/_metrics/metrics.json",
        csv=f"{RESULTS}/blends/_metrics/metrics.csv",
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
        settings=BLENDS_SETTINGS,
    threads: BLENDS.get("threads", 2)
    log:
        f"{RESULTS}/logs/blends/evaluate_blends.log",
    benchmark:
        f"{RESULTS}/benchmarks/blends/evaluate_blends.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/blends_evaluate.py"


rule deblend:
    input:
        cuts=f"{RESULTS}/cuts/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
        store=f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}/grz",
        model=f"{BLENDS_MODELS}/{BLENDS_MODEL}.keras",
    output:
        f"{RESULTS}/blends/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
    params:
        apply=BLENDS.get("apply", {}),
        pixel_scale=BLENDS_SETTINGS["sim"].get("pixel_scale", 0.262),
        model_name=BLENDS_MODEL,
    threads: 1
    log:
        f"{RESULTS}/logs/blends/deblend_{{survey}}_{{release}}_{{hpx}}.log",
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/blends_deblend.py"


if BLENDS.get("enabled", False):
    CATALOG_COLUMNS["blends"] = f"{RESULTS}/blends/{{survey}}/{{release}}/hpx={{hpx}}.parquet"
    ALL_TARGETS += [
        f"{RESULTS}/blends/_metrics/metrics.json",
        f"{RESULTS}/report/blends_metrics.html",
        f"{RESULTS}/report/blends_fig5.png",
        f"{RESULTS}/report/blends_fig6.png",
        f"{RESULTS}/report/blends_fig7.png",
        f"{RESULTS}/report/blends_fig8.png",
        f"{RESULTS}/report/blends_iou.png",
        f"{RESULTS}/report/blends_examples.png",
    ]
