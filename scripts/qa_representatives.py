"""Rule `qa_representatives`: Input-1 (20 stamps of 25x25) and Input-2 (cluster counts)."""
from pathlib import Path

import numpy as np

from catclean.io import provenance, read_parquet, write_parquet
from catclean.qa.grading import representatives
from catclean.qa.som import BatchSOM
from catclean.qa.stellarity import Stellarity
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
som, extra = BatchSOM.load(snakemake.input.som)
reps, clusters = representatives(
    read_parquet(snakemake.input.exposures), read_parquet(snakemake.input.ccds),
    read_parquet(snakemake.input.sources), Stellarity.load(snakemake.input.stellarity),
    som, extra["unit_cluster"], int(snakemake.params.stamp), int(snakemake.params.seed))
Path(snakemake.output.reps).parent.mkdir(parents=True, exist_ok=True)
with open(snakemake.output.reps, "wb") as fh:
    np.savez_compressed(fh, **reps)
write_parquet(clusters, snakemake.output.clusters,
              prov=provenance(snakemake.config, stage="qa", step="representatives"))
log.info("%d representative images from %d exposures", len(reps["expid"]),
         len(np.unique(reps["expid"])))
