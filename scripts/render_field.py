"""Rule `render_field`: render one synthetic host field and catalog it (native columns)."""
from catclean.io import provenance, read_parquet, write_parquet
from catclean.runtime import rule_setup
from catclean.sky.fields import host_field
from catclean.sky.render import write_field_fits

log = rule_setup(snakemake)
p = snakemake.params
hosts = read_parquet(snakemake.input.hosts)
survey, nsaid = snakemake.wildcards.survey, int(snakemake.wildcards.host)
fld, catalog = host_field(hosts, nsaid, survey, p.seed, p.radius_kpc, p.cosmology, p.sky)
log.info("rendered %s field of host %d: %s px, %d detections", survey, nsaid, fld.shape,
         len(catalog))
write_field_fits(fld, snakemake.output.image)
write_parquet(catalog, snakemake.output.detections,
              prov=provenance({"sky": p.sky, "seed": p.seed}, stage="render_field",
                              survey=survey, release=snakemake.wildcards.release,
                              host=nsaid))
