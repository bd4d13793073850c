# Cutouts (paper 001 Sec. 2.1 / 3.2): for every source of a partition, a 128x128 grz RGB
# cutout over 60" (0.469"/pix, Legacy viewer colours; the shred CNN input) and a grz flux
# cube at 0.262"/pix in nanomaggies (blends stage), as sharded CutoutStores.
# Synthetic surveys: resampled from the rendered *Legacy* field of the source's host (the
# cutout imaging is always Legacy, also for SDSS / PS1 sources). Live surveys: the Legacy
# viewer (catclean.catalogs.services.legacy_viewer) through the services' one fetcher
# (bounded pool, on-disk cache under services.cache_dir). See docs/cutouts.md.


rule cutouts:
    input:
        unpack(cutouts_inputs),
    output:
        rgb=directory(f"{CUTOUT_DIR}/rgb"),
        grz=directory(f"{CUTOUT_DIR}/grz"),
        status=f"{CUTOUT_DIR}/status.parquet",
    params:
        spec={key: CUTOUTS[key] for key in SPEC_KEYS},
        provider=lambda wc: cutout_provider(wc.survey),
        services=lambda wc: SERVICES if cutout_provider(wc.survey) == "live" else None,
        imaging_release=lambda wc: (
            config["surveys"][CUTOUTS["imaging_survey"]]["release"]
            if cutout_provider(wc.survey) == "live"
            else None
        ),
        seed=config["seed"],
    threads: 1
    log:
        f"{LOGS}/cutouts/{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{BENCHMARKS}/cutouts/{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/sky.yaml"
    script:
        "../../scripts/cutouts.py"
