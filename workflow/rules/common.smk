# Shared workflow glue: the resolved config, path patterns, partition bookkeeping, and the
# two registries every stage uses to plug into the workflow (docs/architecture.md):
#   CATALOG_COLUMNS[name] = partition_path(name): one Parquet per partition with
#       `source_id` and the stage's new columns (one row per source); `assemble`
#       left-joins them onto the cut catalog and checks that rows balance.
#   ALL_TARGETS: extra final products (plots, metrics, QA tables) for `rule all`.
import json
import os

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from catclean.config import ConfigError, preset_settings, validate_config
from catclean.incomplete import drop_incomplete_outputs

# the one validation: fills every schema default (presets included) into `config`
try:
    validate_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
except ConfigError as exc:
    raise WorkflowError(f"catclean: {exc}") from None

# envs/<env>.post-deploy.sh installs catclean from here into each conda env (--sdm conda)
os.environ.setdefault("CATCLEAN_ROOT", workflow.basedir)

RESULTS = f"{config['results_dir']}/{config['run_name']}"

# Crash safety (issue 15): a job killed mid-run (kill -9, node loss) keeps its
# `.snakemake/incomplete` marker, but Snakemake 9 checks those markers once, before the
# `hosts` checkpoint's dependants (render_field, query_catalog, cutouts, assemble, ...)
# are in the DAG, and never for them afterwards: a killed job whose output exists was
# skipped. Removing the marked outputs first makes them missing, which Snakemake always
# reruns (catclean.incomplete explains the Snakemake internals). Skipped while any
# Snakemake instance holds a lock here, and in job subprocesses (cluster executors).
if workflow.is_main_process:
    for _path in drop_incomplete_outputs(RESULTS):
        logger.warning(f"catclean: removed {_path}, left incomplete by a killed job: it reruns")


def repo_file(path):
    """A file path of the config as given, or in the repository when it is relative and
    absent from the working directory: the shipped `data/` files (e.g. the eye labels)
    also serve a run made elsewhere with `--directory`."""
    if path and not os.path.isabs(path) and not os.path.exists(path):
        return os.path.join(workflow.basedir, path)
    return path


LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
SURVEYS = [name for name, spec in config["surveys"].items() if spec["enabled"]]
RELEASE = {name: config["surveys"][name]["release"] for name in SURVEYS}
CATALOG_COLUMNS = {}
ALL_TARGETS = []


wildcard_constraints:
    survey="|".join(SURVEYS) or "none",
    release="[a-z0-9_]+",
    hpx=r"\d+",
    host=r"\d+",


def partition_path(stage):
    """The one per-partition path pattern: `{RESULTS}/<stage>/<survey>/<release>/hpx=<p>.parquet`."""
    return f"{RESULTS}/{stage}/{{survey}}/{{release}}/hpx={{hpx}}.parquet"


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


def all_survey_partitions(stage):
    """Every partition file of `stage` over every enabled survey."""
    return [
        path
        for survey in SURVEYS
        for path in expand(
            partition_path(stage), survey=survey, release=RELEASE[survey], hpx=partitions()
        )
    ]


def assemble_inputs(wildcards):
    inputs = {
        "cuts": survey_partitions(partition_path("cuts"))(wildcards),
        "hosts": rules.hosts.output.hosts,
    }
    for name, pattern in CATALOG_COLUMNS.items():
        inputs[name] = survey_partitions(pattern)(wildcards)
    return inputs


def all_targets(wildcards):
    targets = [
        rules.catalog_done.output[0],
        rules.cutflow_report.output[0],
        rules.sky_plot.output[0],
    ]
    return targets + ALL_TARGETS
