"""Rule `morphology_columns`: in_host_mask, morph_class, morph_score and
morphology_reason for every source of one partition (one row per source_id)."""
from catclean.morphology.stage import catalog_columns
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
inp = snakemake.input
catalog_columns(inp.cuts, inp.table, inp.masks, snakemake.output[0])
