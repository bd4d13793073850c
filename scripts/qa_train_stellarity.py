"""Rule `qa_train_stellarity`: the CLASS_STAR replacement for sep, with its ROC AUC."""

from catclean.qa import plots
from catclean.qa.grading import read_many, save_json, train_stellarity
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
model, metrics, (is_star, p_star) = train_stellarity(
    read_many(snakemake.input.sources), read_many(snakemake.input.exposures),
    int(snakemake.params.seed), snakemake.params.backend)
model.save(snakemake.output.model)
save_json(metrics, snakemake.output.metrics)
plots.roc_curve(is_star, p_star, metrics["roc_auc_test"], snakemake.output.roc)
log.info("stellarity: %s", metrics)
