"""Rule `sky_plot`: hosts and catalog sources on the sky, coloured by truth label."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.report import sky_plot  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402

rule_logging(snakemake.log[0])
sky_plot(snakemake.input.hosts, list(snakemake.input.catalogs), snakemake.output[0])
