"""Rule `hosts`: the host table (synthetic or NSA) and the HEALPix partition plan."""
import json
from pathlib import Path

from catclean.catalogs.hosts_io import load_hosts
from catclean.catalogs.partition import host_cones, partition_plan
from catclean.cosmology import make_cosmology
from catclean.io import provenance, write_parquet
from catclean.runtime import rule_setup
from catclean.sky.hosts import NSA_UNITS

log = rule_setup(snakemake)
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
