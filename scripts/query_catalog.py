"""Rule `query_catalog`: native catalog rows of one survey in one HEALPix partition."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.catalogs.providers import get_provider  # noqa: E402
from catclean.io import provenance, read_parquet, write_parquet  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402

log = rule_logging(snakemake.log[0])
p = snakemake.params
survey, hpx = snakemake.wildcards.survey, int(snakemake.wildcards.hpx)
cones = read_parquet(snakemake.input.hosts)
fields = list(snakemake.input.get("fields", []))
services = dict(p.services)
if not services.get("cache_dir"):  # live providers: default cache results/<run>/cache
    services["cache_dir"] = str(Path(snakemake.output[0]).parents[3] / "cache")
provider = get_provider(survey, p.survey, services, field_catalogs=fields)
native = provider.query(cones, hpx, p.nside)
log.info("%s hpx=%d: %d rows", survey, hpx, len(native))
write_parquet(native, snakemake.output[0],
              prov=provenance({"surveys": {survey: p.survey}, "seed": p.seed},
                              stage="query_catalog", hpx=hpx, **provider.describe()))
