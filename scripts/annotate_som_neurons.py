"""Rule `annotate_som_neurons`: per-neuron hits and p_shred, the fraction of annotated
members that are shreds (paper 004 Sec. 8.2, like P_sidelobe), from the synthetic truth of
every partition's mapped sources or from the user's neuron-label CSV."""
from catclean.runtime import rule_setup
from catclean.som.stage import annotate

log = rule_setup(snakemake)
inp = snakemake.input
annotate(inp.mappings, inp.cuts, inp.som, snakemake.params.annotation, snakemake.output[0],
         labels_csv=inp.get("labels"))
