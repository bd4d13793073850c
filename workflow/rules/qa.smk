# qa stage: CFHT MegaCam image-quality grading (paper 000, Teimoorinia et al.).
# make_exposures -> extract_sources -> train_qa_stellarity -> train_qa_som
#   -> representatives -> train_qa_cnn -> grade_exposures -> report plots
# Independent of the catalog stages. Outputs under {RESULTS}/qa/. See docs/qa.md.

from catclean.qa.run import qa_config

QA = qa_config(config.get("qa", {}))  # defaults and 'preset: paper' overrides

if QA.get("enabled", False):
    QA_DIR = f"{RESULTS}/qa"
    QA_BATCHES = list(range(int(QA["simulate"]["n_batches"])))

    wildcard_constraints:
        qabatch=r"\d+",

    rule qa_make_exposures:
        output:
            fits=directory(f"{QA_DIR}/exposures/b{{qabatch}}"),
            exposures=f"{QA_DIR}/exposures/b{{qabatch}}.parquet",
            truth=f"{QA_DIR}/exposures/b{{qabatch}}_truth.parquet",
        params:
            qa=QA,
            seed=config["seed"],
        log:
            f"{QA_DIR}/logs/make_exposures_b{{qabatch}}.log",
        benchmark:
            f"{QA_DIR}/benchmarks/make_exposures_b{{qabatch}}.tsv"
        conda:
            "../../envs/sky.yaml"
        script:
            "../../scripts/qa_make_exposures.py"

    rule qa_extract_sources:
        input:
            fits=f"{QA_DIR}/exposures/b{{qabatch}}",
            exposures=f"{QA_DIR}/exposures/b{{qabatch}}.parquet",
            truth=f"{QA_DIR}/exposures/b{{qabatch}}_truth.parquet",
        output:
            ccds=f"{QA_DIR}/sources/b{{qabatch}}_ccds.parquet",
            sources=f"{QA_DIR}/sources/b{{qabatch}}.parquet",
            failures=f"{QA_DIR}/sources/b{{qabatch}}_failures.parquet",
        params:
            qa=QA,
        log:
            f"{QA_DIR}/logs/extract_sources_b{{qabatch}}.log",
        benchmark:
            f"{QA_DIR}/benchmarks/extract_sources_b{{qabatch}}.tsv"
        conda:
            "../../envs/sky.yaml"
        script:
            "../../scripts/qa_extract_sources.py"

    rule qa_train_stellarity:
        input:
            sources=expand(f"{QA_DIR}/sources/b{{qabatch}}.parquet", qabatch=QA_BATCHES),
            exposures=expand(f"{QA_DIR}/exposures/b{{qabatch}}.parquet", qabatch=QA_BATCHES),
        output:
            model=f"{QA_DIR}/models/stellarity.pkl",
            metrics=f"{QA_DIR}/metrics/stellarity.json",
            roc=report(
                f"{QA_DIR}/plots/stellarity_roc.png",
                caption="../report/qa_stellarity.rst",
                category="QA",
            ),
        params:
            qa=QA,
            seed=config["seed"],
        log:
            f"{QA_DIR}/logs/train_stellarity.log",
        conda:
            "../../envs/ml.yaml"
        script:
            "../../scripts/qa_train_stellarity.py"

    rule qa_train_som:
        input:
            sources=expand(f"{QA_DIR}/sources/b{{qabatch}}.parquet", qabatch=QA_BATCHES),
            exposures=expand(f"{QA_DIR}/exposures/b{{qabatch}}.parquet", qabatch=QA_BATCHES),
            stellarity=f"{QA_DIR}/models/stellarity.pkl",
        output:
            som=f"{QA_DIR}/models/som.npz",
            hitmap=report(
                f"{QA_DIR}/plots/som_hitmap.png",
                caption="../report/qa_som_hitmap.rst",
                category="QA",
            ),
            means=report(
                f"{QA_DIR}/plots/som_cluster_means.png",
                caption="../report/qa_som_cluster_means.rst",
                category="QA",
            ),
        params:
            qa=QA,
            seed=config["seed"],
        threads: 2
        log:
            f"{QA_DIR}/logs/train_som.log",
        benchmark:
            f"{QA_DIR}/benchmarks/train_som.tsv"
        conda:
            "../../envs/ml.yaml"
        script:
            "../../scripts/qa_train_som.py"

    rule qa_representatives:
        input:
            fits=f"{QA_DIR}/exposures/b{{qabatch}}",
            exposures=f"{QA_DIR}/exposures/b{{qabatch}}.parquet",
            ccds=f"{QA_DIR}/sources/b{{qabatch}}_ccds.parquet",
            sources=f"{QA_DIR}/sources/b{{qabatch}}.parquet",
            som=f"{QA_DIR}/models/som.npz",
            stellarity=f"{QA_DIR}/models/stellarity.pkl",
        output:
            reps=f"{QA_DIR}/representatives/b{{qabatch}}.npz",
            clusters=f"{QA_DIR}/representatives/b{{qabatch}}_sources.parquet",
        params:
            qa=QA,
            seed=config["seed"],
        log:
            f"{QA_DIR}/logs/representatives_b{{qabatch}}.log",
        conda:
            "../../envs/ml.yaml"
        script:
            "../../scripts/qa_representatives.py"

    rule qa_train_cnn:
        input:
            reps=expand(f"{QA_DIR}/representatives/b{{qabatch}}.npz", qabatch=QA_BATCHES),
            exposures=expand(f"{QA_DIR}/exposures/b{{qabatch}}.parquet", qabatch=QA_BATCHES),
        output:
            m1=f"{QA_DIR}/models/M1.keras",
            m2=f"{QA_DIR}/models/M2.keras",
            m3=f"{QA_DIR}/models/M3.keras",
            metrics=f"{QA_DIR}/metrics/models.json",
            curves=report(
                f"{QA_DIR}/plots/training_curves.png",
                caption="../report/qa_training.rst",
                category="QA",
            ),
        params:
            qa=QA,
            seed=config["seed"],
        threads: 2
        log:
            f"{QA_DIR}/logs/train_cnn.log",
        benchmark:
            f"{QA_DIR}/benchmarks/train_cnn.tsv"
        conda:
            "../../envs/ml.yaml"
        script:
            "../../scripts/qa_train_cnn.py"

    rule qa_grade_exposures:
        input:
            reps=expand(f"{QA_DIR}/representatives/b{{qabatch}}.npz", qabatch=QA_BATCHES),
            clusters=expand(
                f"{QA_DIR}/representatives/b{{qabatch}}_sources.parquet", qabatch=QA_BATCHES
            ),
            exposures=expand(f"{QA_DIR}/exposures/b{{qabatch}}.parquet", qabatch=QA_BATCHES),
            ccds=expand(f"{QA_DIR}/sources/b{{qabatch}}_ccds.parquet", qabatch=QA_BATCHES),
            sources=expand(f"{QA_DIR}/sources/b{{qabatch}}.parquet", qabatch=QA_BATCHES),
            failures=expand(
                f"{QA_DIR}/sources/b{{qabatch}}_failures.parquet", qabatch=QA_BATCHES
            ),
            model=f"{QA_DIR}/models/{QA['grade']['model']}.keras",
            metrics=f"{QA_DIR}/metrics/models.json",
        output:
            grades=f"{QA_DIR}/grades.parquet",
        params:
            qa=QA,
            seed=config["seed"],
        threads: 2
        log:
            f"{QA_DIR}/logs/grade_exposures.log",
        conda:
            "../../envs/ml.yaml"
        script:
            "../../scripts/qa_grade_exposures.py"

    rule qa_report:
        input:
            grades=f"{QA_DIR}/grades.parquet",
            metrics=f"{QA_DIR}/metrics/models.json",
            stellarity=f"{QA_DIR}/metrics/stellarity.json",
            reps=f"{QA_DIR}/representatives/b0.npz",
            exposures=f"{QA_DIR}/exposures/b0.parquet",
        output:
            accuracy=report(
                f"{QA_DIR}/plots/accuracy.png",
                caption="../report/qa_accuracy.rst",
                category="QA",
            ),
            confusion=report(
                f"{QA_DIR}/plots/confusion.png",
                caption="../report/qa_confusion.rst",
                category="QA",
            ),
            plane=report(
                f"{QA_DIR}/plots/fwhm_ellipticity.png",
                caption="../report/qa_fwhm_ellipticity.rst",
                category="QA",
            ),
            classical=report(
                f"{QA_DIR}/tables/classical_vs_m3.csv",
                caption="../report/qa_classical.rst",
                category="QA",
            ),
            examples=report(
                f"{QA_DIR}/plots/representative_images.png",
                caption="../report/qa_representatives.rst",
                category="QA",
            ),
            summary=f"{QA_DIR}/metrics/summary.json",
        params:
            qa=QA,
        log:
            f"{QA_DIR}/logs/report.log",
        conda:
            "../../envs/report.yaml"
        script:
            "../../scripts/qa_report.py"

    ALL_TARGETS.extend(
        [
            f"{QA_DIR}/grades.parquet",
            f"{QA_DIR}/metrics/summary.json",
            f"{QA_DIR}/plots/accuracy.png",
            f"{QA_DIR}/plots/som_hitmap.png",
        ]
    )
