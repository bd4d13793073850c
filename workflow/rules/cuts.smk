# SAGA-style cuts (paper 001 Sec. 3.1) and host association; every cut is a named
# boolean column, failing rows stay in the table.


rule cuts:
    input:
        catalog=rules.normalize.output[0],
        hosts=rules.hosts.output.hosts,
    output:
        partition_path("cuts"),
    params:
        cuts=config["cuts"],
        radius_kpc=config["association"]["radius_kpc"],
        cosmology=config["cosmology"],
    log:
        f"{LOGS}/cuts/{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{BENCHMARKS}/cuts/{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/cuts.py"
