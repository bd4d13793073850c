"""Rule `train_shred_cnn`: held-out test + k-fold CV training (paper 001 Sec. 2.2)."""
from catclean.runtime import rule_setup
from catclean.shreds.stage import load_training_set, train

log = rule_setup(snakemake, tensorflow=True)
p = snakemake.params
data = load_training_set(snakemake.input[0], p.seed, galaxy_fraction=None)
train(data, p.settings, p.seed, snakemake.threads, snakemake.output.model, snakemake.output.cv,
      folds_dir=snakemake.output.folds)
