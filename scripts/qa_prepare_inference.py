"""Rule `qa_prepare_inference`: the grading model's int8 form (ONNX Runtime, calibrated on
its own representative images) and its inference card: bf16 and int8 against float32; a
precision that fails its accuracy guard is not offered (issue 16)."""
import numpy as np

from catclean.qa.grading import concat_reps, prepare_inference
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
p = snakemake.params
reps = concat_reps([dict(np.load(f, allow_pickle=False)) for f in snakemake.input.reps])
prepare_inference(snakemake.input.model, reps, p.kind, snakemake.output[0], p.seed,
                  p.calibration_samples, p.check_samples)
