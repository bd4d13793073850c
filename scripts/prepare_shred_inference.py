"""Rule `prepare_shred_inference`: the shred model's int8 form (ONNX Runtime, calibrated on
its own training cutouts) and its inference card: bf16 and int8 against float32 on other
training cutouts; a precision that fails its accuracy guard is not offered (issue 16)."""
from catclean.runtime import rule_setup
from catclean.shreds.stage import prepare_inference

log = rule_setup(snakemake, tensorflow=True)
p = snakemake.params
prepare_inference(snakemake.input.model, snakemake.input.data, snakemake.output[0], p.seed,
                  p.threshold, p.batch_size, p.calibration_cutouts, p.check_cutouts)
