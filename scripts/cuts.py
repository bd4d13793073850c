"""Rule `cuts`: SAGA-style cuts (paper 001 Sec. 3.1) and host association, as columns."""
from catclean.catalogs.schema import COMMON_UNITS, NATIVE_UNITS
from catclean.cosmology import make_cosmology
from catclean.cuts import apply_cuts, associate_hosts
from catclean.io import read_metadata, read_parquet, write_parquet
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
w = snakemake.wildcards
table = read_parquet(snakemake.input.catalog)
hosts = read_parquet(snakemake.input.hosts)
table = associate_hosts(table, hosts, p.radius_kpc, make_cosmology(p.cosmology))
table = apply_cuts(table, p.cuts, w.survey)
log.info("%s hpx=%s: %d rows, %d pass all cuts", w.survey, w.hpx, len(table),
         int(table["passes_cuts"].sum()))
prov = read_metadata(snakemake.input.catalog)["provenance"]
prov.update(stage="cuts", cuts=p.cuts, radius_kpc=p.radius_kpc)
write_parquet(table, snakemake.output[0],
              units={**COMMON_UNITS, **NATIVE_UNITS, "host_dist_kpc": "kpc"}, prov=prov)
