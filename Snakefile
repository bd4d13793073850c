# catclean: clean galaxy catalogs from large sky surveys.
# Thin top level: config, schema validation, rule includes, `rule all`.
# Run:  snakemake --cores all   (default: offline synthetic sky; see README.md)
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/hosts.smk"
include: "workflow/rules/catalogs.smk"
include: "workflow/rules/cuts.smk"
include: "workflow/rules/cutouts.smk"
include: "workflow/rules/shreds.smk"
include: "workflow/rules/som.smk"
include: "workflow/rules/morphology.smk"
include: "workflow/rules/blends.smk"
include: "workflow/rules/qa.smk"
include: "workflow/rules/assemble.smk"
include: "workflow/rules/report.smk"


localrules:
    all,


# Network rules run on the submit host under a cluster executor (compute nodes usually have
# no internet). A rule listed here must not be in a group too: Snakemake never runs a
# grouped rule locally (profiles/slurm `groups:`; docs/slurm.md, "Network rules").
if config["hosts"]["provider"] == "nsa":

    localrules:
        hosts,


if any(config["surveys"][s]["provider"] == "live" for s in SURVEYS):

    localrules:
        query_catalog,


if any(cutout_provider(s) == "live" for s in SURVEYS):

    localrules:
        cutouts,


if MORPH_LIVE_IMAGING:

    localrules:
        fetch_host_images,


rule all:
    input:
        all_targets,
    default_target: True
