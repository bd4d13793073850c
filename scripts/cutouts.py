"""Rule `cutouts`: RGB (0.469"/pix) and grz flux (0.262"/pix) cutout stores of one partition."""
from catclean.catalogs.services.legacy_viewer import LegacyCutoutClient
from catclean.cutouts.build import (
    CutoutSpec,
    LiveCutouts,
    SyntheticCutouts,
    build_partition,
    field_paths_from_inputs,
)
from catclean.io import provenance, read_parquet, write_parquet
from catclean.runtime import progress, rule_setup

log = rule_setup(snakemake)
p = snakemake.params
w = snakemake.wildcards
spec = CutoutSpec.from_config(p.spec)
table = read_parquet(snakemake.input.cuts)
table = table[[c for c in ("source_id", "ra", "dec", "field_nsaid") if c in table.columns]]
if p.provider == "synthetic":
    provider = SyntheticCutouts(field_paths_from_inputs(snakemake.input.get("fields", [])), spec)
else:
    provider = LiveCutouts(LegacyCutoutClient(p.services, p.imaging_release), spec)
bar = progress(range(len(table)), desc=f"cutouts {w.survey} hpx={w.hpx}", unit="src")
status = build_partition(table, provider, spec, snakemake.output.rgb, snakemake.output.grz,
                         meta={"survey": w.survey, "release": w.release, "hpx": int(w.hpx)},
                         progress=bar.update)
bar.close()
log.info("%s hpx=%s: %d sources; rgb %s; grz %s", w.survey, w.hpx, len(status),
         status.rgb_status.value_counts().to_dict(), status.grz_status.value_counts().to_dict())
write_parquet(status.astype({c: "string" for c in status.columns}), snakemake.output.status,
              prov=provenance({"cutouts": p.spec, "seed": p.seed}, stage="cutouts",
                              survey=w.survey, release=w.release, hpx=int(w.hpx),
                              provider=p.provider))
