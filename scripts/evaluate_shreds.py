"""Rule `evaluate_shreds`: metrics JSON, ROC (paper 001 Fig. 3), example grid (Fig. 4)."""
from catclean.runtime import rule_setup
from catclean.shreds.stage import evaluate

log = rule_setup(snakemake)
out = snakemake.output
evaluate(snakemake.input.cv, snakemake.input.data, snakemake.params.seed, out.metrics,
         out.roc, out.examples)
