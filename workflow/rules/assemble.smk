# Assemble: join every stage's per-partition columns onto the cut catalog and write the
# hive-partitioned Parquet catalog (survey=<s>/hpx=<p>/part-0.parquet).


rule assemble:
    input:
        unpack(assemble_inputs),
    output:
        catalog=directory(f"{RESULTS}/catalog/survey={{survey}}"),
        cutflow=f"{RESULTS}/cutflow/{{survey}}.csv",
    params:
        release=lambda wc: RELEASE[wc.survey],
        columns=list(CATALOG_COLUMNS),
        config_digest=catalog_config_digest,
        seed=config["seed"],
    log:
        f"{LOGS}/assemble/{{survey}}.log",
    benchmark:
        f"{BENCHMARKS}/assemble/{{survey}}.tsv"
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/assemble.py"


rule catalog_done:
    input:
        expand(rules.assemble.output.catalog, survey=SURVEYS),
    output:
        touch(f"{RESULTS}/catalog/_SUCCESS"),
    log:
        f"{LOGS}/catalog_done.log",
    conda:
        "../../envs/catalogs.yaml"
    shell:
        "ls {input:q} > {log:q}"
