"""Rule qa_extract_sources: per-CCD source extraction (sep or Source Extractor)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.io import provenance, read_parquet, write_parquet
from catclean.qa.run import qa_config, step_extract
from catclean.qa.scriptutil import script_logger

log = script_logger(snakemake.log[0])
qa = qa_config(snakemake.params.qa)
exposures = read_parquet(snakemake.input.exposures)
truth = read_parquet(snakemake.input.truth)
ccds, sources, failures = step_extract(
    qa, exposures, truth, progress=lambda r: log.info("extracted %s", r.expid))
prov = provenance(snakemake.config, stage="qa", step="extract_sources",
                  backend=qa["extract"]["backend"])
write_parquet(ccds, snakemake.output.ccds, units={"globalback": "adu", "globalrms": "adu",
                                                  "exptime": "s", "r_ref": "pix"}, prov=prov)
write_parquet(sources, snakemake.output.sources,
              units={"x": "pix", "y": "pix", "npix": "pix2", "a": "pix", "b": "pix",
                     "flux": "adu", "peak": "adu", "r50": "pix", "back": "adu",
                     "exptime": "s"}, prov=prov)
write_parquet(failures, snakemake.output.failures, prov=prov)
for r in failures.itertuples():
    log.warning("exposure %s not usable: %s", r.expid, r.reason)
log.info("%d CCDs, %d sources, %d failed exposures", len(ccds), len(sources), len(failures))
