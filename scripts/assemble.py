"""Rule `assemble`: join stage columns, check row balance, write the hive-partitioned
catalog of one survey and its cut flow."""
from catclean.assemble import assemble_survey
from catclean.io import provenance
from catclean.runtime import rule_setup

log = rule_setup(snakemake)
p = snakemake.params
survey = snakemake.wildcards.survey
stage_paths = {name: list(snakemake.input[name]) for name in p.columns}
prov = provenance(None, stage="assemble", config_digest=p.config_digest, seed=p.seed)
flow = assemble_survey(list(snakemake.input.cuts), stage_paths, snakemake.output.catalog,
                       survey, p.release, prov)
flow.to_csv(snakemake.output.cutflow, index=False)
log.info("cut flow:\n%s", flow.to_string(index=False))
