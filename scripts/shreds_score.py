"""Rule `score_shreds`: p_shred / is_shred for every source of one partition (paper 001
Sec. 3.2). One model load per job; sources failing the cuts or without an ok cutout get
nulls and a reason."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.cutouts import CutoutStore  # noqa: E402
from catclean.io import read_metadata, read_parquet, write_parquet  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402
from catclean.shreds.score import ShredScorer, score_partition  # noqa: E402

log = rule_logging(snakemake.log[0])
p = snakemake.params
w = snakemake.wildcards
cuts = read_parquet(snakemake.input.cuts)
store = CutoutStore(snakemake.input.store)
import keras  # noqa: E402

keras.utils.set_random_seed(int(p.seed))
need = cuts["passes_cuts"].fillna(False).astype(bool).sum()
scorer = ShredScorer(snakemake.input.model, kind=p.kind,
                     batch_size=p.shreds.get("batch_size", 64)) if need else None
out = score_partition(cuts, store, scorer, threshold=p.shreds.get("threshold", 0.5))
log.info("%s hpx=%s: %d rows, %d scored, %d shreds; reasons %s", w.survey, w.hpx, len(out),
         int(out.p_shred.notna().sum()), int(out.is_shred.fillna(False).sum()),
         out.shreds_reason.str.split(":").str[0].value_counts().to_dict())
prov = read_metadata(snakemake.input.cuts)["provenance"]
prov.update(stage="shreds", model=str(snakemake.input.model), model_kind=p.kind,
            threshold=p.shreds.get("threshold", 0.5))
write_parquet(out, snakemake.output[0], units={"p_shred": ""}, prov=prov)
