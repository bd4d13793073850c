"""Rule `train_blend_models`: blend2flux, U-Net, blend2mask2flux (paper 002 Sec. 3)."""
from pathlib import Path

from catclean.blends.stage import train_models
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
train_models(snakemake.input.train, snakemake.input.val, snakemake.params.settings,
             snakemake.params.seed, Path(snakemake.output.blend2flux).parent)
