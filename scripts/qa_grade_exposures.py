"""Rule qa_grade_exposures: one Parquet row per exposure (probabilities, class, metrics)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.io import provenance, write_parquet
from catclean.qa.models import load_combiner, load_model, setup_tf
from catclean.qa.pipeline import OUTPUT_UNITS
from catclean.qa.run import qa_config, step_grade
from catclean.qa.scriptutil import load_reps, read_many, script_logger

log = script_logger(snakemake.log[0])
qa = qa_config(snakemake.params.qa)
setup_tf(snakemake.threads, int(snakemake.params.seed))
exposures = read_many(snakemake.input.exposures)
ccds = read_many(snakemake.input.ccds)
sources = read_many(snakemake.input.sources)
clusters = read_many(snakemake.input.clusters)
failures = read_many(snakemake.input.failures)
if len(failures) == 0:
    failures = failures.reindex(columns=["expid", "status", "reason"])
reps = load_reps(snakemake.input.reps)
kind = qa["grade"]["model"]
model = load_model(snakemake.input.model)
stel = clusters["stellarity"].to_numpy() if len(clusters) else clusters
# the per-exposure combination rule fitted with the model (on its validation exposures)
combiner = load_combiner(snakemake.input.metrics, kind)
grades = step_grade(qa, exposures, ccds, sources, stel, failures, reps, model, kind,
                    combiner=combiner)
grades["model"] = kind
write_parquet(grades, snakemake.output.grades, units=OUTPUT_UNITS,
              prov=provenance(snakemake.config, stage="qa", step="grade_exposures", model=kind,
                              combine=(combiner or {}).get("rule", "mean_log"),
                              combiner_theta=json.dumps((combiner or {}).get("theta"))))
for r in grades[grades["status"] != "ok"].itertuples():
    log.warning("exposure %s %s: %s", r.expid, r.status, r.reason)
log.info("graded %d exposures: %s", len(grades), grades["status"].value_counts().to_dict())
