# Rotation- and flip-invariant SOM over the cutouts (paper 004, PINK; docs/som.md): train
# one SOM on the grz cubes of every partition, map every cutout, annotate the neurons
# (synthetic truth or a user CSV of neuron labels) and give every source its best-matching
# neuron, transform and p_shred_som. Every rule calls one function of catclean.som.stage.
#
#   train_cutout_som -> map_cutouts (per partition) -> annotate_som_neurons (all)
#                    -> som_columns (per partition, CATALOG_COLUMNS["som"]) ; plot_som

SOM = config["som"]
SOM_PRESET = preset_settings(config, "som")
SOM_DIR = f"{RESULTS}/som/_model"
SOM_CSV = SOM["annotation"]["source"] == "csv"
# the SOM works on the cutouts stage's grz cubes: off when cutouts are off
SOM_ON = SOM["enabled"] and config["cutouts"]["enabled"]
if SOM_ON and SOM_CSV and not SOM["annotation"]["labels_csv"]:
    raise WorkflowError("som.annotation.source=csv needs som.annotation.labels_csv")


rule train_cutout_som:
    input:
        # stores[i] and cuts[i] are the same partition
        stores=lambda wc: [
            path
            for survey in SURVEYS
            for path in expand(
                rules.cutouts.output.grz, survey=survey, release=RELEASE[survey], hpx=partitions()
            )
        ],
        cuts=lambda wc: all_survey_partitions("cuts"),
    output:
        som=f"{SOM_DIR}/som.bin",
        settings=f"{SOM_DIR}/som.json",
        **({"images": f"{SOM_DIR}/train_images.bin"} if SOM["write_pink_files"] else {}),
    params:
        settings=SOM_PRESET,
        train_sources=SOM["train_sources"],
        seed=config["seed"],
    threads: SOM["threads"]
    log:
        f"{LOGS}/som/train_cutout_som.log",
    benchmark:
        f"{BENCHMARKS}/som/train_cutout_som.tsv"
    conda:
        "../../envs/som.yaml"
    script:
        "../../scripts/train_cutout_som.py"


rule map_cutouts:
    input:
        cuts=partition_path("cuts"),
        store=rules.cutouts.output.grz,
        som=rules.train_cutout_som.output.som,
    output:
        partition_path("som_mapping"),
    params:
        # what preprocessing and mapping depend on (the SOM file carries the rest)
        settings={k: SOM_PRESET[k] for k in ("image_dim", "bands", "preprocess", "map_numrot")},
        batch_size=SOM["batch_size"],
    threads: SOM["threads"]
    log:
        f"{LOGS}/som/map_{{survey}}_{{release}}_{{hpx}}.log",
    benchmark:
        f"{BENCHMARKS}/som/map_{{survey}}_{{release}}_{{hpx}}.tsv"
    conda:
        "../../envs/som.yaml"
    script:
        "../../scripts/map_cutouts.py"


rule annotate_som_neurons:
    input:
        # mappings[i] and cuts[i] (truth labels) are the same partition
        mappings=lambda wc: all_survey_partitions("som_mapping"),
        cuts=lambda wc: all_survey_partitions("cuts"),
        som=rules.train_cutout_som.output.som,
        **({"labels": SOM["annotation"]["labels_csv"]} if SOM_CSV else {}),
    output:
        f"{SOM_DIR}/neurons.csv",
    params:
        annotation={k: v for k, v in SOM["annotation"].items() if k != "labels_csv"},
    log:
        f"{LOGS}/som/annotate_som_neurons.log",
    conda:
        "../../envs/som.yaml"
    script:
        "../../scripts/annotate_som_neurons.py"


rule som_columns:
    input:
        mapping=rules.map_cutouts.output[0],
        neurons=rules.annotate_som_neurons.output[0],
    output:
        partition_path("som"),
    log:
        f"{LOGS}/som/columns_{{survey}}_{{release}}_{{hpx}}.log",
    conda:
        "../../envs/som.yaml"
    script:
        "../../scripts/som_columns.py"


rule plot_som:
    input:
        som=rules.train_cutout_som.output.som,
        neurons=rules.annotate_som_neurons.output[0],
    output:
        prototypes=report(
            f"{RESULTS}/report/som_prototypes.png",
            caption="../report/som_prototypes.rst",
            category="SOM",
        ),
        hits=report(
            f"{RESULTS}/report/som_hits.png",
            caption="../report/som_hits.rst",
            category="SOM",
        ),
        annotation=report(
            f"{RESULTS}/report/som_annotation.png",
            caption="../report/som_annotation.rst",
            category="SOM",
        ),
    log:
        f"{LOGS}/som/plot_som.log",
    conda:
        "../../envs/som.yaml"
    script:
        "../../scripts/plot_som.py"


if SOM_ON:
    CATALOG_COLUMNS["som"] = partition_path("som")
    ALL_TARGETS += [
        rules.annotate_som_neurons.output[0],
        rules.plot_som.output.prototypes,
        rules.plot_som.output.hits,
        rules.plot_som.output.annotation,
    ]
