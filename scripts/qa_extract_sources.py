"""Rule `qa_extract_sources`: per-CCD source extraction (sep or Source Extractor)."""
from catclean.io import provenance, read_parquet, write_parquet
from catclean.qa.grading import UNITS, extract_sources
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
extract = snakemake.params.extract
ccds, sources, failures = extract_sources(
    read_parquet(snakemake.input.exposures), read_parquet(snakemake.input.truth), extract,
    snakemake.params.pixel_scale, progress=lambda r: log.info("extracted %s", r.expid),
    workers=snakemake.threads)
prov = provenance(snakemake.config, stage="qa", step="extract_sources",
                  backend=extract["backend"])
write_parquet(ccds, snakemake.output.ccds, units=UNITS["ccds"], prov=prov)
write_parquet(sources, snakemake.output.sources, units=UNITS["sources"], prov=prov)
write_parquet(failures, snakemake.output.failures, prov=prov)
for r in failures.itertuples():
    log.warning("exposure %s not usable: %s", r.expid, r.reason)
log.info("%d CCDs, %d sources, %d failed exposures", len(ccds), len(sources), len(failures))
