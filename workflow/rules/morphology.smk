# Morphology (paper 003, Farias et al.: Mask R-CNN; docs/morphology.md): simulate SDSS-like
# gri training fields, train the network in stages for a fixed number of steps, evaluate
# it on held-out fields, segment every host (class, score, mask centroid, mask) and give
# every source in_host_mask / morph_class / morph_score / morphology_reason; the report
# compares in_host_mask with the shred CNN's is_shred. Every rule calls one function of
# catclean.morphology.stage.
#
#   make_morphology_fields -> train_morphology -> evaluate_morphology (report)
#                                              -> segment_hosts (all hosts)
#   fetch_host_images (live imaging only: Legacy viewer cutout.jpg per host) -> segment_hosts
#   segment_hosts -> morphology_columns (per partition, CATALOG_COLUMNS["morphology"])
#                 -> morphology_shred_crosscheck (report, with shreds)

include: "morphology_inputs.smk"


rule make_morphology_fields:
    output:
        f"{MORPH_DIR}/fields.npz",
    params:
        n_fields=MORPH["n_fields"],
        field_size=MORPH["field_size"],
        pixscale=MORPH["pixscale"],
        truth_level=MORPH["truth_level"],
        split=MORPH["split"],
        seed=config["seed"],
    threads: MORPH["threads"]
    log:
        f"{LOGS}/morphology/make_morphology_fields.log",
    benchmark:
        f"{BENCHMARKS}/morphology/make_morphology_fields.tsv"
    conda:
        "../../envs/sim.yaml"
    script:
        "../../scripts/make_morphology_fields.py"


rule train_morphology:
    input:
        rules.make_morphology_fields.output[0],
    output:
        model=f"{MORPH_DIR}/morphology_maskrcnn.json",
        weights=f"{MORPH_DIR}/morphology_maskrcnn.weights.h5",
        history=f"{MORPH_DIR}/train_history.json",
    params:
        settings=preset_settings(config, "morphology"),
        train_steps=MORPH["train_steps"],
        mask_source=MORPH["mask_source"],
        seed=config["seed"],
    threads: MORPH["threads"]
    log:
        f"{LOGS}/morphology/train_morphology.log",
    benchmark:
        f"{BENCHMARKS}/morphology/train_morphology.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/train_morphology.py"


rule evaluate_morphology:
    input:
        fields=rules.make_morphology_fields.output[0],
        model=rules.train_morphology.output.model,
        weights=rules.train_morphology.output.weights,
    output:
        metrics=f"{MORPH_DIR}/metrics.json",
        detections=report(
            f"{RESULTS}/report/morphology_detections.png",
            caption="../report/morphology_detections.rst",
            category="Morphology",
        ),
        precision_recall=report(
            f"{RESULTS}/report/morphology_precision_recall.png",
            caption="../report/morphology_precision_recall.rst",
            category="Morphology",
        ),
        centroids=report(
            f"{RESULTS}/report/morphology_centroids.png",
            caption="../report/morphology_centroids.rst",
            category="Morphology",
        ),
        noise=report(
            f"{RESULTS}/report/morphology_noise.png",
            caption="../report/morphology_noise.rst",
            category="Morphology",
        ),
    params:
        mask_source=MORPH["mask_source"],
        noise_scales=MORPH["noise_scales"],
        min_score=MORPH["min_score"],
        batch_size=MORPH["batch_size"],
        pixscale=MORPH["pixscale"],
        seed=config["seed"],
    threads: MORPH["threads"]
    log:
        f"{LOGS}/morphology/evaluate_morphology.log",
    benchmark:
        f"{BENCHMARKS}/morphology/evaluate_morphology.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/evaluate_morphology.py"


rule fetch_host_images:
    input:
        hosts=rules.hosts.output.hosts,
    output:
        images=f"{MORPH_HOSTS_DIR}/images.npz",
    params:
        size=MORPH["field_size"],
        pixscale=MORPH["pixscale"],
        release=config["surveys"][MORPH_IMAGING]["release"],
        services=SERVICES,
    threads: 1
    log:
        f"{LOGS}/morphology/fetch_host_images.log",
    benchmark:
        f"{BENCHMARKS}/morphology/fetch_host_images.tsv"
    conda:
        "../../envs/sky.yaml"
    script:
        "../../scripts/fetch_host_images.py"


rule segment_hosts:
    input:
        unpack(host_image_inputs),
        hosts=rules.hosts.output.hosts,
        model=rules.train_morphology.output.model,
        weights=rules.train_morphology.output.weights,
    output:
        table=f"{MORPH_HOSTS_DIR}/hosts.parquet",
        masks=f"{MORPH_HOSTS_DIR}/masks.npz",
    params:
        size=MORPH["field_size"],
        pixscale=MORPH["pixscale"],
        min_score=MORPH["min_score"],
        batch_size=MORPH["batch_size"],
    threads: MORPH["threads"]
    log:
        f"{LOGS}/morphology/segment_hosts.log",
    benchmark:
        f"{BENCHMARKS}/morphology/segment_hosts.tsv"
    conda:
        "../../envs/ml.yaml"
    script:
        "../../scripts/segment_hosts.py"


rule morphology_columns:
    input:
        cuts=partition_path("cuts"),
        table=rules.segment_hosts.output.table,
        masks=rules.segment_hosts.output.masks,
    output:
        partition_path("morphology"),
    log:
        f"{LOGS}/morphology/columns_{{survey}}_{{release}}_{{hpx}}.log",
    conda:
        "../../envs/catalogs.yaml"
    script:
        "../../scripts/morphology_columns.py"


rule morphology_shred_crosscheck:
    input:
        # shreds[i], morphology[i] and cuts[i] are the same partition
        shreds=lambda wc: all_survey_partitions("shreds"),
        morphology=lambda wc: all_survey_partitions("morphology"),
        cuts=lambda wc: all_survey_partitions("cuts"),
        masks=rules.segment_hosts.output.masks,
    output:
        json=f"{RESULTS}/morphology/_summary/shred_crosscheck.json",
        html=report(
            f"{RESULTS}/report/morphology_shred_crosscheck.html",
            caption="../report/morphology_shred_crosscheck.rst",
            category="Morphology",
        ),
        png=report(
            f"{RESULTS}/report/morphology_shred_crosscheck.png",
            caption="../report/morphology_shred_crosscheck.rst",
            category="Morphology",
        ),
    log:
        f"{LOGS}/morphology/morphology_shred_crosscheck.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/morphology_shred_crosscheck.py"


if MORPH["enabled"]:
    CATALOG_COLUMNS["morphology"] = partition_path("morphology")
    ALL_TARGETS += [
        rules.evaluate_morphology.output.metrics,
        rules.evaluate_morphology.output.detections,
        rules.evaluate_morphology.output.precision_recall,
        rules.evaluate_morphology.output.centroids,
        rules.evaluate_morphology.output.noise,
        rules.segment_hosts.output.table,
    ]
    if config["shreds"]["enabled"]:
        ALL_TARGETS += [
            rules.morphology_shred_crosscheck.output.json,
            rules.morphology_shred_crosscheck.output.html,
            rules.morphology_shred_crosscheck.output.png,
        ]
