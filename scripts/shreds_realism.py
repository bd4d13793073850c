"""Rule `shreds_realism`: classifier two-sample test of the run's synthetic training
cutouts against real cutouts -- a directory, or the run's own candidate cutouts
(AUCs, statistic histograms, gallery, the test's most certain verdicts)."""
import shutil
from pathlib import Path

from catclean.runtime import rule_setup
from catclean.shreds.real import eye_classes_of
from catclean.shreds.realism import load_run_cutouts, measure

log = rule_setup(snakemake, tensorflow=True)
out = snakemake.output
work = Path(out.json).parent / "realism"
p = snakemake.params
if p.against == "run":
    real = load_run_cutouts(snakemake.input.rgb, snakemake.input.cuts, n=2 * int(p.n),
                            seed=int(p.seed))
    log.info("realism test against %d of the run's candidate cutouts", len(real))
    classes = None
else:
    real = p.images
    # the labelled directory: also the AUC within each class (synthetic galaxies vs the
    # real galaxies, shreds vs shreds)
    classes = eye_classes_of(real, snakemake.input.labels)
measure(snakemake.input.set, real, work, n=int(p.n), seed=int(p.seed),
        methods=tuple(p.methods), real_classes=classes)
shutil.copyfile(work / "realism.json", out.json)
shutil.copyfile(work / "statistics_hist.png", out.statistics)
shutil.copyfile(work / "gallery.png", out.gallery)
shutil.copyfile(work / "extremes.png", out.extremes)
