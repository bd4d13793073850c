"""Rule `normalize`: native survey columns -> the common schema."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.catalogs import normalize  # noqa: E402
from catclean.catalogs.schema import COMMON_UNITS, NATIVE_UNITS  # noqa: E402
from catclean.io import read_metadata, read_parquet, write_parquet  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402

log = rule_logging(snakemake.log[0])
w = snakemake.wildcards
native = read_parquet(snakemake.input[0])
nside = int(snakemake.config["partition"]["nside"])
table = normalize(native, w.survey, w.release, nside)
log.info("%s hpx=%s: normalized %d rows", w.survey, w.hpx, len(table))
prov = read_metadata(snakemake.input[0])["provenance"]
prov.update(stage="normalize")
write_parquet(table, snakemake.output[0], units={**COMMON_UNITS, **NATIVE_UNITS}, prov=prov)
