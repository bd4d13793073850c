"""Rule `som_columns`: the som catalog columns of one partition, the mapping plus
p_shred_som of each source's best-matching neuron (one row per source_id)."""
from catclean.runtime import rule_setup
from catclean.som.stage import catalog_columns

log = rule_setup(snakemake)
catalog_columns(snakemake.input.mapping, snakemake.input.neurons, snakemake.output[0])
