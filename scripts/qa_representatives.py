"""Rule qa_representatives: Input-1 (20 stamps of 25x25) and Input-2 (cluster counts)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import numpy as np
import pandas as pd

from catclean.io import provenance, read_parquet, write_parquet
from catclean.qa.features import Stellarity
from catclean.qa.pipeline import representatives_batch
from catclean.qa.run import assign_clusters, qa_config
from catclean.qa.scriptutil import script_logger
from catclean.qa.som import BatchSOM

log = script_logger(snakemake.log[0])
qa = qa_config(snakemake.params.qa)
seed = int(snakemake.params.seed)
exposures = read_parquet(snakemake.input.exposures)
ccds = read_parquet(snakemake.input.ccds)
sources = read_parquet(snakemake.input.sources)
som, extra = BatchSOM.load(snakemake.input.som)
unit_cluster = extra["unit_cluster"]
stellarity = Stellarity.load(snakemake.input.stellarity)
stel, feats, clusters = assign_clusters(sources, stellarity, som, unit_cluster)
reps = representatives_batch(exposures, ccds, sources, clusters, int(unit_cluster.max()) + 1,
                             int(qa["stamp"]), seed)
Path(snakemake.output.reps).parent.mkdir(parents=True, exist_ok=True)
with open(snakemake.output.reps, "wb") as fh:
    np.savez_compressed(fh, **reps)
out = pd.DataFrame({"expid": sources["expid"].to_numpy() if len(sources) else [],
                    "ccd": sources["ccd"].to_numpy() if len(sources) else [],
                    "stellarity": stel, "cluster": clusters})
write_parquet(out, snakemake.output.clusters,
              prov=provenance(snakemake.config, stage="qa", step="representatives"))
log.info("%d representative images from %d exposures", len(reps["expid"]),
         len(np.unique(reps["expid"])))
