# Catalog queries, one job per survey and HEALPix partition, then normalization to the
# common schema. The synthetic provider first renders each host field and runs detection.


rule render_field:
    input:
        hosts=f"{RESULTS}/hosts/hosts.parquet",
    output:
        image=f"{RESULTS}/fields/{{survey}}/{{release}}/{{host}}.fits",
        detections=f"{RESULTS}/fields/{{survey}}/{{release}}/{{host}}_detections.parquet",
    params:
        sky=config.get("sky", {}),
        seed=config["seed"],
        radius_kpc=config["association"]["radius_kpc"],
        cosmology=config["cosmology"],
    log:
        f"{RESULTS}/logs/render_field/{{survey}}_{{release}}_{{host}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_field/{{survey}}_{{release}}_{{host}}.tsv"
    conda:
        "../../envs/sky.yaml"
    script:
        "../../scripts/render_field.py"


rule query_catalog:
    input:
        unpack(query_inputs),
    output:
        f"{RESULTS}/raw/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
    params:
        survey=lambda wc: config["surveys"][wc.survey],
        services=config.get("services", {}),
        nside=config["partition"]["nside"],
        radius_kpc=config["association"]["radius_kpc"],
        cosmology=config["cosmology"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/query_catalog/{{survey}}_{{release}}_{{hpx}}.log",
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/query_catalog.py"


rule normalize:
    input:
        f"{RESULTS}/raw/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
    output:
        f"{RESULTS}/normalized/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
    log:
        f"{RESULTS}/logs/normalize/{{survey}}_{{release}}_{{hpx}}.log",
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/normalize.py"
