"""Rule `score_shreds`: p_shred / is_shred for every source of one partition (paper 001
Sec. 3.2). One model load per job, in the configured inference precision; sources failing
the cuts or without an ok cutout get nulls and a reason."""
from catclean.runtime import rule_setup
from catclean.shreds.stage import score

log = rule_setup(snakemake, tensorflow=True)
p = snakemake.params
score(snakemake.input.cuts, snakemake.input.store, snakemake.input.model, p.kind,
      p.threshold, p.batch_size, snakemake.output[0], precision=p.precision,
      inference_dir=snakemake.input.get("inference"), folds_dir=snakemake.input.get("folds"))
