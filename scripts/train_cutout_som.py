"""Rule `train_cutout_som`: train the rotation/flip-invariant SOM (paper 004, PINK) on the
preprocessed grz cutouts of every partition; writes a PINK v2 SOM file, the settings JSON
and (som.write_pink_files) the PINK image file of the training images."""
from catclean.runtime import rule_setup
from catclean.som.stage import train

log = rule_setup(snakemake)
inp, out, p = snakemake.input, snakemake.output, snakemake.params
train(list(zip(inp.stores, inp.cuts)), p.settings, p.train_sources, p.seed, out.som,
      out.settings, out.get("images"))
