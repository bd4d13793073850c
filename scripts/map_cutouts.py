"""Rule `map_cutouts`: best-matching neuron, distance and transform (rotation, flip) of
every source of one partition on the SOM (paper 004 Sec. 1 step 4); sources without a
usable cutout get nulls and som_reason."""
from catclean.runtime import rule_setup
from catclean.som.stage import map_partition

log = rule_setup(snakemake)
inp, p = snakemake.input, snakemake.params
map_partition(inp.cuts, inp.store, inp.som, p.settings, p.batch_size, snakemake.output[0])
