"""Rule `normalize`: native survey columns -> the common schema."""
from catclean.catalogs import normalize
from catclean.catalogs.schema import COMMON_UNITS, NATIVE_UNITS
from catclean.io import read_metadata, read_parquet, write_parquet
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
w = snakemake.wildcards
native = read_parquet(snakemake.input[0])
table = normalize(native, w.survey, w.release, int(snakemake.params.nside),
                  hpx=int(w.hpx))
log.info("%s hpx=%s: normalized %d rows", w.survey, w.hpx, len(table))
prov = read_metadata(snakemake.input[0])["provenance"]
prov.update(stage="normalize")
write_parquet(table, snakemake.output[0], units={**COMMON_UNITS, **NATIVE_UNITS}, prov=prov)
