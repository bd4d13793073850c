"""Rule `shreds_realism`: classifier two-sample test of the run's synthetic training
cutouts against the real cutouts (AUCs, statistic histograms, gallery)."""
import shutil
from pathlib import Path

from catclean.runtime import rule_setup
from catclean.shreds.realism import measure

log = rule_setup(snakemake, tensorflow=True)
out = snakemake.output
work = Path(out.json).parent / "realism"
p = snakemake.params
measure(snakemake.input[0], p.images, work, n=int(p.n), seed=int(p.seed),
        methods=tuple(p.methods))
shutil.copyfile(work / "realism.json", out.json)
shutil.copyfile(work / "statistics_hist.png", out.statistics)
shutil.copyfile(work / "gallery.png", out.gallery)
