"""Rule `train_morphology`: staged training of the morphology Mask R-CNN (paper 003
Fig. 8 / Table 2: heads, then all layers) for a fixed number of optimiser steps; writes the
model (JSON config + weights) and the training history."""
from catclean.morphology.stage import train
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
p, out = snakemake.params, snakemake.output
train(snakemake.input[0], p.settings, p.train_steps, p.mask_source, p.seed, out.model,
      out.history)
