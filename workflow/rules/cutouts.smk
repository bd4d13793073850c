# Cutouts (paper 001 Sec. 2.1 / 3.2): for every source of a partition, a 128x128 grz RGB
# cutout over 60" (0.469"/pix, Legacy viewer colours; the shred CNN input) and a grz flux
# cube at 0.262"/pix in nanomaggies (blends stage), as sharded CutoutStores.
# Synthetic surveys: resampled from the rendered *Legacy* field of the source's host (the
# cutout imaging is always Legacy, also for SDSS / PS1 sources). Live surveys: the Legacy
# viewer through catclean.cutouts.legacy_client (bounded pool, on-disk cache). See
# docs/cutouts.md.

from catclean.cutouts.smk import cutout_provider, cutouts_inputs

CUTOUTS = config.get("cutouts", {})


rule cutouts:
    input:
        unpack(lambda wc: cutouts_inputs(wc, config, RESULTS, partition_plan())),
    output:
        rgb=directory(f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}/rgb"),
        grz=directory(f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}/grz"),
        status=f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}/status.parquet",
    params:
        cutouts=CUTOUTS,
        provider=lambda wc: cutout_provider(config, wc.survey),
        services=config.get("services", {}),
        legacy_release=config["surveys"].get("legacy", {}).get("release", "dr9"),
        seed=config["seed"],
    threads: 1
    log:
        f"{RESULTS}/logs/cutouts/{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/cutouts/{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/sky.yaml"
    script:
        "../../scripts/cutouts.py"
