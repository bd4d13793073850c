# Hosts: NSA-like table (synthetic) or NSA v1_0_1 (live), and the partition plan.


checkpoint hosts:
    output:
        hosts=f"{RESULTS}/hosts/hosts.parquet",
        plan=f"{RESULTS}/hosts/plan.json",
    params:
        hosts=config["hosts"],
        cosmology=config["cosmology"],
        radius_kpc=config["association"]["radius_kpc"],
        nside=config["partition"]["nside"],
        seed=config["seed"],
    log:
        f"{LOGS}/hosts.log",
    benchmark:
        f"{BENCHMARKS}/hosts.tsv"
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/hosts.py"
