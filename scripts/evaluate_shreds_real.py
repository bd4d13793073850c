"""Rule `evaluate_shreds_real`: the scoring model and every one-number heuristic on the
real validation eye labels (AUC, accuracy, reliability diagram)."""
import shutil
from pathlib import Path

from catclean.runtime import rule_setup
from catclean.shreds.real import evaluate_real

log = rule_setup(snakemake, tensorflow=True)
out = snakemake.output
work = Path(out.json).parent / "real_validation"
evaluate_real({"scoring model": snakemake.input.model}, snakemake.params.images, work,
              csv=snakemake.input.labels, threshold=snakemake.params.threshold)
shutil.copyfile(work / "real_validation.json", out.json)
shutil.copyfile(work / "reliability.png", out.reliability)
shutil.copyfile(work / "examples_real.png", out.examples)
