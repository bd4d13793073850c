"""Rule `hosts`: the host table (synthetic or NSA) and the HEALPix partition plan."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.catalogs.hosts_io import load_hosts  # noqa: E402
from catclean.catalogs.partition import host_cones, partition_plan  # noqa: E402
from catclean.io import provenance, write_parquet  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402
from catclean.sky.hosts import NSA_UNITS, make_cosmology  # noqa: E402

log = rule_logging(snakemake.log[0])
p = snakemake.params
cosmo = make_cosmology(p.cosmology)
hosts = load_hosts(p.hosts, p.seed, cosmo)
cones = host_cones(hosts, p.radius_kpc, cosmo)
plan = partition_plan(cones, p.nside)
log.info("%d hosts (%d flagged), %d partitions at nside=%d", len(cones),
         int((cones.host_status != "ok").sum()), len(plan["partitions"]), p.nside)
for row in cones[cones.host_status != "ok"].itertuples():
    log.warning("host NSAID %s flagged: %s", row.NSAID, row.host_reason)
write_parquet(cones, snakemake.output.hosts, units={**NSA_UNITS, "radius_deg": "deg"},
              prov=provenance({"hosts": p.hosts, "seed": p.seed}, stage="hosts",
                              provider=p.hosts["provider"],
                              **hosts.attrs.get("nsa_provenance", {})))
Path(snakemake.output.plan).write_text(json.dumps(plan, indent=1))
