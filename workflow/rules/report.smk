# Report products shown by `snakemake --report`.


rule cutflow_report:
    input:
        expand(rules.assemble.output.cutflow, survey=SURVEYS),
    output:
        report(
            f"{RESULTS}/report/cutflow.html",
            caption="../report/cutflow.rst",
            category="Catalog",
        ),
    log:
        f"{LOGS}/cutflow_report.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/cutflow_report.py"


rule sky_plot:
    input:
        hosts=rules.hosts.output.hosts,
        catalogs=expand(rules.assemble.output.catalog, survey=SURVEYS),
    output:
        report(
            f"{RESULTS}/report/sky.png",
            caption="../report/sky.rst",
            category="Catalog",
        ),
    log:
        f"{LOGS}/sky_plot.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/sky_plot.py"
