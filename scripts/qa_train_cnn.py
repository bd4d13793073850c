"""Rule qa_train_cnn: train M1, M2, M3 and evaluate them on held-out exposures."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.qa import plots
from catclean.qa.run import qa_config, step_models
from catclean.qa.scriptutil import load_reps, read_many, script_logger

log = script_logger(snakemake.log[0])
qa = qa_config(snakemake.params.qa)
qa["threads"] = snakemake.threads
seed = int(snakemake.params.seed)
reps = load_reps(snakemake.input.reps)
exposures = read_many(snakemake.input.exposures)
models, metrics = step_models(qa, seed, reps, exposures, log.info)
for kind, path in (("M1", snakemake.output.m1), ("M2", snakemake.output.m2),
                   ("M3", snakemake.output.m3)):
    models[kind].save(path)
Path(snakemake.output.metrics).write_text(json.dumps(metrics, indent=2))
plots.training_curves(metrics, snakemake.output.curves)
