"""Rule `make_blends`: isolated GalSim galaxies -> train / val / test blends (paper 002 Sec. 2)."""
from catclean.blends.stage import make_blends
from catclean.io import provenance
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
make_blends(p.settings, p.seed, snakemake.output,
            prov=provenance(snakemake.config, stage="blends", preset=p.settings["preset"]))
