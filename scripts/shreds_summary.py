"""Rule `shreds_summary`: shred fraction per survey (paper 001 Sec. 3.2 finds ~4-5%) and,
on the synthetic sky, purity / completeness of is_shred against the truth labels."""
from catclean.runtime import rule_setup
from catclean.shreds.stage import summary

log = rule_setup(snakemake)
p = snakemake.params
summary({s: snakemake.input[s] for s in p.surveys}, p.model_kind, snakemake.output.json,
        snakemake.output.html)
