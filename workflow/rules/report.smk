# Report products shown by `snakemake --report`.


rule cutflow_report:
    input:
        expand(f"{RESULTS}/cutflow/{{survey}}.csv", survey=SURVEYS),
    output:
        report(
            f"{RESULTS}/report/cutflow.html",
            caption="../report/cutflow.rst",
            category="Catalog",
        ),
    log:
        f"{RESULTS}/logs/cutflow_report.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/cutflow_report.py"


rule sky_plot:
    input:
        hosts=f"{RESULTS}/hosts/hosts.parquet",
        catalogs=expand(f"{RESULTS}/catalog/survey={{survey}}", survey=SURVEYS),
    output:
        report(
            f"{RESULTS}/report/sky.png",
            caption="../report/sky.rst",
            category="Catalog",
        ),
    log:
        f"{RESULTS}/logs/sky_plot.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/sky_plot.py"
