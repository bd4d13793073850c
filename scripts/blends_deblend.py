"""Rule deblend: deblended r fluxes for catalog sources flagged as blended."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import logging  # noqa: E402

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("blends_deblend")

from catclean.blends import apply, models  # noqa: E402
from catclean.cutouts import CutoutStore  # noqa: E402
from catclean.io import provenance, read_parquet, write_parquet  # noqa: E402

models.configure_threads(snakemake.threads)
name = snakemake.params.model_name
cuts = read_parquet(snakemake.input.cuts)
store_path = Path(snakemake.input.store)
store = CutoutStore(store_path) if (store_path / "index.parquet").exists() else None
if store is None:
    log.warning("no cutout store index at %s: blended sources get cutout_missing", store_path)
model = models.load_model(snakemake.input.model)
out = apply.deblend_partition(cuts, store, model, name,
                              pixel_scale=float(snakemake.params.pixel_scale),
                              cfg=snakemake.params.apply)
log.info("%d sources, %d blended, %d deblended; reasons: %s", len(out),
         int(out["is_blended"].sum()), int(out[f"blend_flux_r_{name}"].notna().sum()),
         out["blends_reason"].value_counts(dropna=False).to_dict())
write_parquet(out, snakemake.output[0], units=apply.units(name),
              prov=provenance(snakemake.config, stage="blends", model=name,
                              survey=snakemake.wildcards.survey,
                              release=snakemake.wildcards.release))
