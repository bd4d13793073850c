"""Rule `evaluate_morphology`: held-out metrics of the morphology network (paper 003
Sec. 5: mAP@0.5, Table 3, mask IoU, centroids, chroma noise; trivial baseline alongside)
and the report plots."""
from catclean.morphology.stage import evaluate_model
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
p, out = snakemake.params, snakemake.output
evaluate_model(snakemake.input.fields, snakemake.input.model, mask_source=p.mask_source,
               noise_scales=p.noise_scales, min_score=p.min_score, batch_size=p.batch_size,
               pixscale=p.pixscale, seed=p.seed, metrics_path=out.metrics,
               detections_path=out.detections, pr_path=out.precision_recall,
               centroid_path=out.centroids, noise_path=out.noise)
