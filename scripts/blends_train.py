"""Rule train_blend_models: blend2flux, U-Net, blend2mask2flux (paper 002 Sec. 3)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import contextlib  # noqa: E402
import logging  # noqa: E402

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(message)s")

from catclean.blends import models, pipeline  # noqa: E402

models.configure_threads(snakemake.threads)
settings = getattr(snakemake.params, "settings", None) or pipeline.resolve(snakemake.params.blends)
train = pipeline.load_set(snakemake.input.train)
val = pipeline.load_set(snakemake.input.val)
outdir = Path(snakemake.output.blend2flux).parent
with open(snakemake.log[0], "a") as fh, contextlib.redirect_stdout(fh):
    pipeline.train_all(train, val, settings, int(snakemake.params.seed), outdir, verbose=2)
