"""Rule qa_train_stellarity: the CLASS_STAR replacement for sep, with its ROC AUC."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.qa import plots
from catclean.qa.pipeline import train_stellarity
from catclean.qa.run import qa_config
from catclean.qa.scriptutil import read_many, script_logger

log = script_logger(snakemake.log[0])
qa = qa_config(snakemake.params.qa)
seed = int(snakemake.params.seed)
sources = read_many(snakemake.input.sources)
exposures = read_many(snakemake.input.exposures)
split = exposures.set_index("expid")["split"]
model, metrics = train_stellarity(sources, split, seed)
model.save(snakemake.output.model)
metrics["backend"] = qa["extract"]["backend"]
te = sources[(sources["expid"].map(split) == "test") & (sources["is_star"] >= 0)]
if qa["extract"]["backend"] == "sextractor" and te["class_star"].notna().any():
    from catclean.qa.features import roc_auc

    metrics["roc_auc_test_class_star"] = roc_auc(te["is_star"], te["class_star"])
Path(snakemake.output.metrics).write_text(json.dumps(metrics, indent=2))
plots.roc_curve(te["is_star"].to_numpy(), model.predict(te), metrics["roc_auc_test"],
                snakemake.output.roc)
log.info("stellarity: %s", metrics)
