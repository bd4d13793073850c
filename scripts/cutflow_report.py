"""Rule `cutflow_report`: one HTML table of the cut flow of every survey."""
from pathlib import Path

from catclean.report import cutflow_html
from catclean.runtime import rule_setup

rule_setup(snakemake)
Path(snakemake.output[0]).write_text(cutflow_html(list(snakemake.input)))
