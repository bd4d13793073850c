"""Rule qa_report: accuracy, confusion matrix, FWHM-ellipticity planes, classical cut."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import numpy as np

from catclean.io import read_parquet
from catclean.qa import CLASSES, plots
from catclean.qa.run import classical_vs_model, qa_config
from catclean.qa.scriptutil import script_logger

log = script_logger(snakemake.log[0])
qa = qa_config(snakemake.params.qa)
g = qa["grade"]
grades = read_parquet(snakemake.input.grades)
metrics = json.loads(Path(snakemake.input.metrics).read_text())
stel = json.loads(Path(snakemake.input.stellarity).read_text())
plots.accuracy_bars(metrics, snakemake.output.accuracy)
test = grades[(grades["split"] == "test") & (grades["status"] != "failed")]
cm = np.zeros((5, 5), int)
for t, p in zip(test["true_class"], test["pred_class"]):
    cm[CLASSES.index(t), CLASSES.index(p)] += 1
plots.confusion(cm, f"{g['model']} on held-out exposures (n={len(test)})",
                snakemake.output.confusion)
plots.fwhm_ellipticity(test, g["fwhm_max"], g["ell_max"], snakemake.output.plane)
tab = classical_vs_model(test, g["p_good_min"])
Path(snakemake.output.classical).parent.mkdir(parents=True, exist_ok=True)
tab.to_csv(snakemake.output.classical, index=False)
reps = dict(np.load(snakemake.input.reps, allow_pickle=False))
exps = read_parquet(snakemake.input.exposures)
plots.representative_examples(reps, dict(zip(exps["expid"], exps["label"])),
                              snakemake.output.examples)
summary = {
    "accuracy": {k: {"per_ccd": metrics[k]["test_accuracy_ccd"],
                     "per_exposure": metrics[k]["test_accuracy_exposure"],
                     "per_exposure_mean_log": metrics[k].get("test_accuracy_exposure_mean_log"),
                     "combine": (metrics[k].get("combiner") or {}).get("rule", "mean_log"),
                     "n_test_exposures": metrics[k]["n_test_exposures"]}
                 for k in ("M1", "M2", "M3")},
    "graded_model": g["model"],
    "confusion_test_exposures": cm.tolist(),
    "stellarity_roc_auc": stel.get("roc_auc_test"),
    "classical_good_but_p_good_low": {r.true_class: int(r.classical_good_but_p_good_low)
                                      for r in tab.itertuples()},
    "status_counts": grades["status"].value_counts().to_dict(),
}
Path(snakemake.output.summary).write_text(json.dumps(summary, indent=2))
log.info("summary: %s", summary)
