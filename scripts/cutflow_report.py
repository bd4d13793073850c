"""Rule `cutflow_report`: one HTML table of the cut flow of every survey."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.report import cutflow_html  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402

rule_logging(snakemake.log[0])
Path(snakemake.output[0]).write_text(cutflow_html(list(snakemake.input)))
