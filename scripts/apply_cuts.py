"""Rule `cuts`: SAGA-style cuts (paper 001 Sec. 3.1) and host association, as columns."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.catalogs.schema import COMMON_UNITS, NATIVE_UNITS  # noqa: E402
from catclean.cuts import apply_cuts, associate_hosts  # noqa: E402
from catclean.io import read_metadata, read_parquet, write_parquet  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402
from catclean.sky.hosts import make_cosmology  # noqa: E402

log = rule_logging(snakemake.log[0])
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
