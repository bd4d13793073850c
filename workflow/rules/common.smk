# Shared helpers: config validation, paths, partition bookkeeping, and the two
# registries every stage uses to plug into the workflow:
#   CATALOG_COLUMNS[name] = path pattern with {survey}, {release}, {hpx}: one Parquet per
#       partition with `source_id` and the stage's new columns (one row per source);
#       `assemble` left-joins them onto the cut catalog and checks that rows balance.
#   ALL_TARGETS: extra final products (plots, metrics, QA tables) for `rule all`.
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # works without `pip install -e .` too

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from catclean.config import ConfigError, validate_config

try:
    validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except ConfigError as exc:
    raise WorkflowError(f"catclean: {exc}") from None
validate(config, "../schemas/config.schema.yaml")

RESULTS = f"{config['results_dir']}/{config['run_name']}"
SURVEYS = [name for name, spec in config["surveys"].items() if spec["enabled"]]
RELEASE = {name: config["surveys"][name]["release"] for name in SURVEYS}
CATALOG_COLUMNS = {}
ALL_TARGETS = []


wildcard_constraints:
    survey="|".join(SURVEYS) or "none",
    release="[a-z0-9_]+",
    hpx=r"\d+",
    host=r"\d+",


def partition_plan():
    """The hosts checkpoint's plan: HEALPix partitions and the host fields touching each."""
    with open(checkpoints.hosts.get().output.plan) as fh:
        return json.load(fh)


def partitions(wildcards=None):
    return partition_plan()["partitions"]


def survey_partitions(pattern):
    """Input function: expand `pattern` over every partition of wildcards.survey."""

    def _inner(wildcards):
        return expand(
            pattern,
            survey=wildcards.survey,
            release=RELEASE[wildcards.survey],
            hpx=partitions(),
        )

    return _inner


def query_inputs(wildcards):
    """Synthetic provider: the detection catalogs of host fields touching the partition."""
    inputs = {"hosts": f"{RESULTS}/hosts/hosts.parquet", "plan": f"{RESULTS}/hosts/plan.json"}
    if config["surveys"][wildcards.survey]["provider"] == "synthetic":
        hosts = partition_plan()["fields"].get(wildcards.hpx, [])
        inputs["fields"] = expand(
            f"{RESULTS}/fields/{{survey}}/{{release}}/{{host}}_detections.parquet",
            survey=wildcards.survey,
            release=wildcards.release,
            host=hosts,
        )
    return inputs


def assemble_inputs(wildcards):
    inputs = {
        "cuts": survey_partitions(
            f"{RESULTS}/cuts/{{survey}}/{{release}}/hpx={{hpx}}.parquet"
        )(wildcards),
        "hosts": f"{RESULTS}/hosts/hosts.parquet",
    }
    for name, pattern in CATALOG_COLUMNS.items():
        inputs[name] = survey_partitions(pattern)(wildcards)
    return inputs


def all_targets(wildcards):
    targets = [f"{RESULTS}/catalog/_SUCCESS", f"{RESULTS}/report/cutflow.html"]
    targets += [f"{RESULTS}/report/sky.png"]
    return targets + ALL_TARGETS
