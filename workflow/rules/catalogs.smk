# Catalog queries, one job per survey and HEALPix partition, then normalization to the
# common schema. The synthetic provider first renders each host field and runs detection.


include: "catalog_inputs.smk"


rule render_field:
    input:
        hosts=rules.hosts.output.hosts,
    output:
        image=f"{RESULTS}/fields/{{survey}}/{{release}}/{{host}}.fits",
        detections=f"{RESULTS}/fields/{{survey}}/{{release}}/{{host}}_detections.parquet",
    params:
        sky=config["sky"],
        seed=config["seed"],
        radius_kpc=config["association"]["radius_kpc"],
        cosmology=config["cosmology"],
    log:
        f"{LOGS}/render_field/{{survey}}_{{release}}_{{host}}.log",
    benchmark:
        f"{BENCHMARKS}/render_field/{{survey}}_{{release}}_{{host}}.tsv"
    conda:
        "../../envs/sky.yaml"
    script:
        "../../scripts/render_field.py"


rule query_catalog:
    input:
        unpack(query_inputs),
    output:
        partition_path("raw"),
    params:
        survey=lambda wc: config["surveys"][wc.survey],
        services=lambda wc: SERVICES if is_live(wc.survey) else None,
        nside=config["partition"]["nside"],
        seed=config["seed"],
    log:
        f"{LOGS}/query_catalog/{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{BENCHMARKS}/query_catalog/{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/query_catalog.py"


rule normalize:
    input:
        rules.query_catalog.output[0],
    output:
        partition_path("normalized"),
    params:
        nside=config["partition"]["nside"],
    log:
        f"{LOGS}/normalize/{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{BENCHMARKS}/normalize/{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/normalize.py"
