"""Rule `evaluate_blends`: networks vs the sep baseline on the test blends (paper 002 Sec. 4)."""
from catclean.blends.stage import NETWORKS, evaluate
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
evaluate(snakemake.input.test, {k: snakemake.input[k] for k in NETWORKS},
         snakemake.params.settings, snakemake.output)
