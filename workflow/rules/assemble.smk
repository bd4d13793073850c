# Assemble: join every stage's per-partition columns onto the cut catalog and write the
# hive-partitioned Parquet catalog (survey=<s>/hpx=<p>/part-0.parquet).


rule assemble:
    input:
        unpack(assemble_inputs),
    output:
        catalog=directory(f"{RESULTS}/catalog/survey={{survey}}"),
        cutflow=f"{RESULTS}/cutflow/{{survey}}.csv",
    params:
        survey=lambda wc: wc.survey,
        release=lambda wc: RELEASE[wc.survey],
        columns=list(CATALOG_COLUMNS),
        nside=config["partition"]["nside"],
        # provenance of one survey's catalog: its own survey entry only, so changing
        # another survey's release does not rerun this assembly
        config=lambda wc: {**config, "surveys": {wc.survey: config["surveys"][wc.survey]}},
    log:
        f"{RESULTS}/logs/assemble/{{survey}}.log",
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/assemble.py"


rule catalog_done:
    input:
        expand(f"{RESULTS}/catalog/survey={{survey}}", survey=SURVEYS),
    output:
        touch(f"{RESULTS}/catalog/_SUCCESS"),
    log:
        f"{RESULTS}/logs/catalog_done.log",
    conda:
        "../../envs/catalogs.yaml"
    shell:
        "ls {input} > {log}"
