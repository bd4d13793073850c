"""Rule `qa_grade_exposures`: one Parquet row per exposure (probabilities, class, metrics)."""
import json

import numpy as np

from catclean.inference import load_predictor
from catclean.io import provenance, write_parquet
from catclean.qa.combiner import load_combiner
from catclean.qa.grading import UNITS, concat_reps, grade_exposures, read_many
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
inp, grade = snakemake.input, snakemake.params.grade
clusters = read_many(inp.clusters)
# the per-exposure combination rule fitted with the model (on its validation exposures)
combiner = load_combiner(inp.metrics, grade["model"])
# compiled, in the precision of qa.grade.inference.precision (its card: inp.inference)
_, predictor, _ = load_predictor(inp.model, snakemake.params.precision, inp.inference, 256)
grades = grade_exposures(
    read_many(inp.exposures), read_many(inp.ccds), read_many(inp.sources),
    clusters["stellarity"].to_numpy() if len(clusters) else clusters, read_many(inp.failures),
    concat_reps([dict(np.load(p, allow_pickle=False)) for p in inp.reps]),
    predictor, grade, snakemake.params.pixel_scale, combiner=combiner)
write_parquet(grades, snakemake.output.grades, units=UNITS["grades"],
              prov=provenance(snakemake.config, stage="qa", step="grade_exposures",
                              model=grade["model"], precision=predictor.precision,
                              precision_requested=snakemake.params.precision,
                              combine=(combiner or {}).get("rule", "mean_log"),
                              combiner_theta=json.dumps((combiner or {}).get("theta"))))
for r in grades[grades["status"] != "ok"].itertuples():
    log.warning("exposure %s %s: %s", r.expid, r.status, r.reason)
log.info("graded %d exposures: %s", len(grades), grades["status"].value_counts().to_dict())
