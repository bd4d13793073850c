"""Rule `qa_report`: accuracy, confusion matrix, FWHM-ellipticity planes, classical cut."""
import json
from pathlib import Path

import numpy as np

from catclean.io import read_parquet
from catclean.qa import plots
from catclean.qa.grading import report, save_json
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
inp, out, grade = snakemake.input, snakemake.output, snakemake.params.grade
metrics = json.loads(Path(inp.metrics).read_text())
test, cm, tab, summary = report(read_parquet(inp.grades), metrics,
                                json.loads(Path(inp.stellarity).read_text()), grade)
plots.accuracy_bars(metrics, out.accuracy)
plots.confusion(cm, f"{grade['model']} on held-out exposures (n={len(test)})", out.confusion)
plots.fwhm_ellipticity(test, grade["fwhm_max"], grade["ell_max"], out.plane)
Path(out.classical).parent.mkdir(parents=True, exist_ok=True)
tab.to_csv(out.classical, index=False)
exps = read_parquet(inp.exposures[0])
plots.representative_examples(dict(np.load(inp.reps[0], allow_pickle=False)),
                              dict(zip(exps["expid"], exps["label"])), out.examples)
save_json(summary, out.summary)
log.info("summary: %s", summary)
