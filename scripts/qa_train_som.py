"""Rule qa_train_som: batch SOM on the five features + k-means of the codebook."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.qa import plots
from catclean.qa.features import Stellarity
from catclean.qa.run import qa_config, step_som
from catclean.qa.scriptutil import read_many, script_logger

log = script_logger(snakemake.log[0])
qa = qa_config(snakemake.params.qa)
qa["threads"] = snakemake.threads
seed = int(snakemake.params.seed)
sources = read_many(snakemake.input.sources)
exposures = read_many(snakemake.input.exposures)
stellarity = Stellarity.load(snakemake.input.stellarity)
som, unit_cluster, feats = step_som(qa, seed, sources, exposures, stellarity, log.info)
som.save(snakemake.output.som, unit_cluster=unit_cluster)
bmu = som.predict(feats)
hits = som.hit_map(feats)
plots.som_hitmap(hits, unit_cluster, snakemake.output.hitmap)
plots.cluster_means(feats, unit_cluster[bmu], int(unit_cluster.max()) + 1, snakemake.output.means)
log.info("quantisation error per iteration: %s", [round(q, 4) for q in som.quantization_error])
