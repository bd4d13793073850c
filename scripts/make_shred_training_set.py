"""Rule `make_shred_training_set`: labeled galaxy / shred RGB cutouts (paper 001 Sec. 2.1).

Synthetic (default): a training sky of its own seed (config seed + training.seed_offset),
Legacy fields of low-redshift hosts, one 128x128 RGB cutout per galaxy / shred detection.
Labeled: the user's CSV (source_id,label) + PNG/JPEG cutouts.
"""
from catclean.runtime import rule_setup
from catclean.shreds.stage import make_training_set

log = rule_setup(snakemake)
p = snakemake.params
make_training_set(snakemake.output[0], p.training, p.seed, p.rgb_size, p.rgb_pixscale,
                  p.radius_kpc, p.cosmology, workers=snakemake.threads)
