"""Rule `query_catalog`: native catalog rows of one survey in one HEALPix partition."""
from catclean.catalogs.providers import get_provider
from catclean.io import provenance, read_parquet, write_parquet
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
survey, hpx = snakemake.wildcards.survey, int(snakemake.wildcards.hpx)
cones = read_parquet(snakemake.input.hosts)
provider = get_provider(survey, p.survey, p.services,
                        field_catalogs=list(snakemake.input.get("fields", [])))
native = provider.query(cones, hpx, p.nside)
log.info("%s hpx=%d: %d rows", survey, hpx, len(native))
write_parquet(native, snakemake.output[0],
              prov=provenance({"surveys": {survey: p.survey}, "seed": p.seed},
                              stage="query_catalog", hpx=hpx, **provider.describe()))
