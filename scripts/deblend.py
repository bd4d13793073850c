"""Rule `deblend`: deblended r fluxes for catalog sources flagged as blended (paper 002)."""
from catclean.blends.stage import deblend
from catclean.io import provenance
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
p, w = snakemake.params, snakemake.wildcards
deblend(snakemake.input.cuts, snakemake.input.store, snakemake.input.model, p.model_name,
        p.pixel_scale, p.apply, snakemake.output[0],
        prov=provenance(snakemake.config, stage="blends", model=p.model_name,
                        survey=w.survey, release=w.release))
