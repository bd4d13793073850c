"""Rule qa_make_exposures: render one batch of synthetic MegaCam exposures."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.io import provenance, write_parquet
from catclean.qa.run import qa_config, step_simulate
from catclean.qa.scriptutil import script_logger

log = script_logger(snakemake.log[0])
qa = qa_config(snakemake.params.qa)
seed = int(snakemake.params.seed)
batch = int(snakemake.wildcards.qabatch)
exposures, truth = step_simulate(
    qa, seed, batch, snakemake.output.fits,
    progress=lambda r: log.info("rendered %s (%s, %s)", r["expid"], r["label"], r["split"]))
prov = provenance(snakemake.config, stage="qa", step="make_exposures", batch=batch)
write_parquet(exposures, snakemake.output.exposures,
              units={"exptime": "s", "fwhm": "arcsec", "trail_length": "arcsec",
                     "defocus_radius": "arcsec", "sky_mag": "mag/arcsec2"}, prov=prov)
write_parquet(truth, snakemake.output.truth, units={"x": "pix", "y": "pix", "mag": "mag"},
              prov=prov)
log.info("batch %d: %d exposures, %d truth sources", batch, len(exposures), len(truth))
