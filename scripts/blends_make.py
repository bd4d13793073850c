"""Rule make_blends: isolated GalSim galaxies -> train / val / test blend sets (paper 002 Sec. 2)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import json  # noqa: E402
import logging  # noqa: E402

from catclean.blends import pipeline, plots  # noqa: E402
from catclean.io import provenance, write_parquet  # noqa: E402

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("blends_make")

settings = getattr(snakemake.params, "settings", None) or pipeline.resolve(snakemake.params.blends)
seed = int(snakemake.params.seed)
log.info("settings: %s", json.dumps(settings))
data = pipeline.simulate(settings, seed)
gal = data["galaxies"]
log.info("galaxies: %d rendered, %d ok, %d train, %d test", len(gal), int(gal["ok"].sum()),
         int((gal["split"] == "train").sum()), int((gal["split"] == "test").sum()))
for name in ("train", "val", "test"):
    pipeline.save_set(getattr(snakemake.output, name), data[name])
    log.info("%s: %d blends", name, len(data[name]["flux"]))
write_parquet(gal, snakemake.output.galaxies,
              units={"flux_model": "nanomaggy", "flux_iso": "nanomaggy", "mag_model": "mag",
                     "mag_iso": "mag", "r_eff": "arcsec", "beta": "rad", "psf_fwhm": "arcsec",
                     "R_pix": "pix"},
              prov=provenance(snakemake.config, stage="blends", preset=settings["preset"]))
plots.examples(data["test"], snakemake.output.examples)
