# Input functions and derived config of the catalog stages (hosts, catalogs, cuts,
# cutouts, assemble): included by catalogs.smk, so the rule files hold rules only.
from catclean.config import config_digest
from catclean.cutouts.build import SPEC_KEYS

# the `services` section with its cache resolved (null = results/<run_name>/cache)
SERVICES = {**config["services"], "cache_dir": config["services"]["cache_dir"] or f"{RESULTS}/cache"}


def is_live(survey):
    return config["surveys"][survey]["provider"] == "live"


def query_inputs(wildcards):
    """The hosts table and, for the synthetic provider, the detection catalogs of the host
    fields touching the partition (from the hosts checkpoint's plan)."""
    inputs = {"hosts": rules.hosts.output.hosts}
    if not is_live(wildcards.survey):
        inputs["fields"] = expand(
            rules.render_field.output.detections,
            survey=wildcards.survey,
            release=wildcards.release,
            host=partition_plan()["fields"].get(wildcards.hpx, []),
        )
    return inputs


CUTOUTS = config["cutouts"]
CUTOUT_DIR = f"{RESULTS}/cutouts/{{survey}}/{{release}}/hpx={{hpx}}"


def cutout_provider(survey):
    """`synthetic` or `live` for `survey` (`cutouts.provider: auto` follows the survey's
    catalog provider)."""
    if CUTOUTS["provider"] == "auto":
        return "live" if is_live(survey) else "synthetic"
    return CUTOUTS["provider"]


def cutouts_inputs(wildcards):
    """The partition's cut table and, for the synthetic provider, the rendered Legacy
    fields of the partition's hosts (from the hosts checkpoint's plan)."""
    inputs = {"cuts": rules.cuts.output[0]}
    if cutout_provider(wildcards.survey) == "synthetic":
        imaging = CUTOUTS["imaging_survey"]
        inputs["fields"] = expand(
            rules.render_field.output.image,
            survey=imaging,
            release=config["surveys"][imaging]["release"],
            host=partition_plan()["fields"].get(wildcards.hpx, []),
        )
    return inputs


def catalog_config_digest(wildcards):
    """Digest of the config a survey's catalog depends on (recorded in its provenance):
    the sky and hosts, this survey's entry only, the cuts and the stages that add columns
    (CATALOG_COLUMNS); not `qa`, not other surveys, so changing those reruns no assembly."""
    sections = ["seed", "cosmology", "partition", "hosts", "association", "cuts", "cutouts"]
    sections += ["services"] if is_live(wildcards.survey) else ["sky"]
    sections += list(CATALOG_COLUMNS)
    relevant = {key: config[key] for key in sections}
    relevant["surveys"] = {wildcards.survey: config["surveys"][wildcards.survey]}
    return config_digest(relevant)


def realism_run_inputs(wildcards):
    """What the synthetic cutouts are compared with: the run's own candidate cutouts (rgb
    stores) and cut partitions for `shreds.real_check.realism_against: run`; else the eye
    labels of the real cutout directory (per-class AUCs)."""
    if config["shreds"]["real_check"]["realism_against"] != "run":
        return {"labels": repo_file(config["shreds"]["real_check"]["labels"])}
    return {
        key: [
            path
            for survey in SURVEYS
            for path in expand(
                pattern, survey=survey, release=RELEASE[survey], hpx=partitions()
            )
        ]
        for key, pattern in (("rgb", rules.cutouts.output.rgb), ("cuts", partition_path("cuts")))
    }
