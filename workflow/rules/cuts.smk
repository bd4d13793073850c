# SAGA-style cuts (paper 001 Sec. 3.1) and host association; every cut is a named
# boolean column, failing rows stay in the table.


rule cuts:
    input:
        catalog=f"{RESULTS}/normalized/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
        hosts=f"{RESULTS}/hosts/hosts.parquet",
    output:
        f"{RESULTS}/cuts/{{survey}}/{{release}}/hpx={{hpx}}.parquet",
    params:
        cuts=config["cuts"],
        radius_kpc=config["association"]["radius_kpc"],
        cosmology=config["cosmology"],
    log:
        f"{RESULTS}/logs/cuts/{{survey}}_{{release}}_{{hpx}}.log",
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/apply_cuts.py"
