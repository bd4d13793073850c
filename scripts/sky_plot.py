"""Rule `sky_plot`: hosts and catalog sources on the sky, coloured by truth label."""
from catclean.report import sky_plot
from catclean.runtime import rule_setup

rule_setup(snakemake)
sky_plot(snakemake.input.hosts, list(snakemake.input.catalogs), snakemake.output[0])
