"""Rule `morphology_shred_crosscheck`: counts of in_host_mask (Mask R-CNN host masks,
paper 003) against is_shred (shred CNN, paper 001) over every partition, and cutouts of the
disagreements."""
from catclean.morphology.stage import shred_crosscheck
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
inp, out = snakemake.input, snakemake.output
shred_crosscheck(inp.shreds, inp.morphology, inp.cuts, inp.masks, out.json, out.html, out.png)
