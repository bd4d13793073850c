# Cutouts (paper 001 Sec. 2.1 / 3.2): for every source of a partition, a 128x128 grz RGB
# cutout over 60" (0.469"/pix, Legacy viewer colours; the shred CNN input) and a grz flux
# cube at 0.262"/pix in nanomaggies (blends stage), as sharded CutoutStores.
# Synthetic surveys: resampled from the rendered *Legacy* field of the source's host (the
# cutout imaging is always Legacy, also for SDSS / PS1 sources). Live surveys: the Legacy
# viewer through catclean.cutouts.legacy_client (bounded pool, on-disk cache). See
# docs/cutouts.md.

CUTOUTS = config.get("cutouts", {})


def cutout_provider(survey):
    prov = CUTOUTS.get("provider", "auto")
    if prov == "auto":
        return "live" if config["surveys"][survey]["provider"] == "live" else "synthetic"
    return prov


def cutouts_inputs(wildcards):
    inputs = {"cuts": f"{RESULTS}/cuts/{wildcards.survey}/{wildcards.release}/hpx={wildcards.hpx}.parquet"}
    if cutout_provider(wildcards.survey) == "synthetic":
        imaging = CUTOUTS.get("imaging_survey", "legacy")
        hosts = partition_plan()["fields"].get(wildcards.hpx, [])
        inputs["fields"] = expand(
            f"{RESULTS}/fields/{imaging}/{{release}}/{{host}}.fits",
            release=config["surveys"][imaging]["release"],
            host=hosts,
        )
    return inputs


rule cutouts:
    input:
        unpack(cutouts_inputs),
    output:
        rgb=directory(f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}/rgb"),
        grz=directory(f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}/grz"),
        status=f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}/status.parquet",
    params:
        cutouts=CUTOUTS,
        provider=lambda wc: cutout_provider(wc.survey),
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
