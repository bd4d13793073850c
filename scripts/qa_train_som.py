"""Rule `qa_train_som`: batch SOM on the five features + k-means of the codebook."""

from catclean.qa import plots
from catclean.qa.grading import read_many, train_som
from catclean.qa.stellarity import Stellarity
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
som, unit_cluster, feats = train_som(
    read_many(snakemake.input.sources), read_many(snakemake.input.exposures),
    Stellarity.load(snakemake.input.stellarity), snakemake.params.som,
    int(snakemake.params.seed), snakemake.threads, log.info)
som.save(snakemake.output.som, unit_cluster=unit_cluster)
plots.som_hitmap(som.hit_map(feats), unit_cluster, snakemake.output.hitmap)
plots.cluster_means(feats, unit_cluster[som.predict(feats)], int(unit_cluster.max()) + 1,
                    snakemake.output.means)
log.info("quantisation error per iteration: %s", [round(q, 4) for q in som.quantization_error])
