"""Rule `qa_make_exposures`: render one batch of synthetic MegaCam exposures."""
from catclean.io import provenance, write_parquet
from catclean.qa.grading import UNITS, make_exposures
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
batch = int(snakemake.wildcards.qabatch)
exposures, truth = make_exposures(
    snakemake.params.simulate, int(snakemake.params.seed), batch, snakemake.output.fits,
    progress=lambda r: log.info("rendered %s (%s, %s)", r["expid"], r["label"], r["split"]))
prov = provenance(snakemake.config, stage="qa", step="make_exposures", batch=batch)
write_parquet(exposures, snakemake.output.exposures, units=UNITS["exposures"], prov=prov)
write_parquet(truth, snakemake.output.truth, units=UNITS["truth"], prov=prov)
log.info("batch %d: %d exposures, %d truth sources", batch, len(exposures), len(truth))
