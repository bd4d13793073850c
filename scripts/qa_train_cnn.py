"""Rule `qa_train_cnn`: train M1, M2, M3 and evaluate them on held-out exposures."""
import numpy as np

from catclean.qa import plots
from catclean.qa.grading import concat_reps, read_many, save_json, train_models
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
reps = concat_reps([dict(np.load(p, allow_pickle=False)) for p in snakemake.input.reps])
models, metrics = train_models(reps, read_many(snakemake.input.exposures),
                               snakemake.params.models, snakemake.params.combine,
                               int(snakemake.params.seed), log.info)
for kind, path in (("M1", snakemake.output.m1), ("M2", snakemake.output.m2),
                   ("M3", snakemake.output.m3)):
    models[kind].save(path)
save_json(metrics, snakemake.output.metrics)
plots.training_curves(metrics, snakemake.output.curves)
