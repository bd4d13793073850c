"""Rule `cutouts`: RGB (0.469"/pix) and grz flux (0.262"/pix) cutout stores of one partition."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.cutouts.build import (  # noqa: E402
    CutoutSpec,
    LiveCutouts,
    SyntheticCutouts,
    build_partition,
    field_paths_from_inputs,
)
from catclean.io import provenance, read_parquet, write_parquet  # noqa: E402
from catclean.runtime import progress, rule_logging  # noqa: E402

log = rule_logging(snakemake.log[0])
p = snakemake.params
w = snakemake.wildcards
cfg = p.cutouts or {}
spec = CutoutSpec.from_config(cfg)
table = read_parquet(snakemake.input.cuts)
table = table[[c for c in ("source_id", "ra", "dec", "field_nsaid") if c in table.columns]]
if p.provider == "synthetic":
    provider = SyntheticCutouts(field_paths_from_inputs(snakemake.input.get("fields", [])), spec)
else:
    from catclean.cutouts.legacy_client import LegacyCutoutClient

    live = cfg.get("live", {})
    client = LegacyCutoutClient(p.services, release=p.legacy_release)
    provider = LiveCutouts(live.get("cache_dir", "results/cache/cutouts"), spec,
                           workers=live.get("workers", 8), client=client)
bar = progress(range(len(table)), desc=f"cutouts {w.survey} hpx={w.hpx}", unit="src")
status = build_partition(table, provider, spec, snakemake.output.rgb, snakemake.output.grz,
                         meta={"survey": w.survey, "release": w.release, "hpx": int(w.hpx)},
                         progress=lambda k: bar.update(k))
bar.close()
log.info("%s hpx=%s: %d sources; rgb %s; grz %s", w.survey, w.hpx, len(status),
         status.rgb_status.value_counts().to_dict(), status.grz_status.value_counts().to_dict())
write_parquet(status.astype({c: "string" for c in status.columns}), snakemake.output.status,
              prov=provenance({"cutouts": cfg, "seed": p.seed}, stage="cutouts",
                              survey=w.survey, release=w.release, hpx=int(w.hpx),
                              provider=p.provider))
