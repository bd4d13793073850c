"""Rule `plot_som`: the SOM's prototype grid (paper 004 Fig. 6), hit map (Fig. 7) and
per-neuron p_shred annotation for the report."""
from catclean.runtime import rule_setup
from catclean.som.stage import plots

log = rule_setup(snakemake)
out = snakemake.output
plots(snakemake.input.som, snakemake.input.neurons, out.prototypes, out.hits, out.annotation)
