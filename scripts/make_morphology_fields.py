"""Rule `make_morphology_fields`: simulate the SDSS-like gri training fields of the
morphology Mask R-CNN (paper 003 Sec. 2; spiral / elliptical at the centre, Otsu and truth
masks) and their stratified train / validation / test split."""
from catclean.morphology.stage import make_fields
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
make_fields(p.n_fields, p.field_size, p.pixscale, p.truth_level, p.split, p.seed,
            snakemake.threads, snakemake.output[0])
