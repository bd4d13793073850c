"""Rule `assemble`: join stage columns, check row balance, write the hive-partitioned
catalog of one survey and its cut flow."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from catclean.assemble import assemble_survey, survey_cutflow  # noqa: E402
from catclean.io import provenance  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402

log = rule_logging(snakemake.log[0])
p = snakemake.params
stage_paths = {name: list(snakemake.input[name]) for name in p.columns}
prov = provenance(p.config, stage="assemble")
cuts = assemble_survey(list(snakemake.input.cuts), stage_paths, snakemake.output.catalog,
                       p.survey, p.release, prov)
flow = survey_cutflow(cuts, p.survey)
flow.to_csv(snakemake.output.cutflow, index=False)
log.info("cut flow:\n%s", flow.to_string(index=False))
