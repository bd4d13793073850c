# qa stage: CFHT MegaCam image-quality grading (paper 000, Teimoorinia et al.).
# qa_make_exposures -> qa_extract_sources -> qa_train_stellarity -> qa_train_som
#   -> qa_representatives -> qa_train_cnn -> qa_grade_exposures -> qa_report
# Independent of the catalog stages. Outputs under {RESULTS}/qa/. Each script calls one
# function of catclean.qa.grading. See docs/qa.md.

if config["qa"]["enabled"]:
    QA_DIR = f"{RESULTS}/qa"
    QA_PRESET = preset_settings(config, "qa")  # the sized sections: simulate, som, models
    QA_BATCHES = list(range(int(QA_PRESET["simulate"]["n_batches"])))
    QA_GRADE = config["qa"]["grade"]
    QA_THREADS = config["qa"]["threads"]

    wildcard_constraints:
        qabatch=r"\d+",

    rule qa_make_exposures:
        output:
            fits=directory(f"{QA_DIR}/exposures/b{{qabatch}}"),
            exposures=f"{QA_DIR}/exposures/b{{qabatch}}.parquet",
            truth=f"{QA_DIR}/exposures/b{{qabatch}}_truth.parquet",
        params:
            simulate=QA_PRESET["simulate"],
            seed=config["seed"],
        log:
            f"{LOGS}/qa/qa_make_exposures_b{{qabatch}}.log",
        benchmark:
            f"{BENCHMARKS}/qa/qa_make_exposures_b{{qabatch}}.tsv"
        conda:
            "../../envs/sky.yaml"
        script:
            "../../scripts/qa_make_exposures.py"

    rule qa_extract_sources:
        input:
            fits=rules.qa_make_exposures.output.fits,
            exposures=rules.qa_make_exposures.output.exposures,
            truth=rules.qa_make_exposures.output.truth,
        output:
            ccds=f"{QA_DIR}/sources/b{{qabatch}}_ccds.parquet",
            sources=f"{QA_DIR}/sources/b{{qabatch}}.parquet",
            failures=f"{QA_DIR}/sources/b{{qabatch}}_failures.parquet",
        params:
            extract=config["qa"]["extract"],
            pixel_scale=QA_PRESET["simulate"]["pixel_scale"],
        threads: QA_THREADS
        log:
            f"{LOGS}/qa/qa_extract_sources_b{{qabatch}}.log",
        benchmark:
            f"{BENCHMARKS}/qa/qa_extract_sources_b{{qabatch}}.tsv"
        conda:
            "../../envs/sky.yaml"
        script:
            "../../scripts/qa_extract_sources.py"

    rule qa_train_stellarity:
        input:
            sources=expand(rules.qa_extract_sources.output.sources, qabatch=QA_BATCHES),
            exposures=expand(rules.qa_make_exposures.output.exposures, qabatch=QA_BATCHES),
        output:
            model=f"{QA_DIR}/models/stellarity.pkl",
            metrics=f"{QA_DIR}/metrics/stellarity.json",
            roc=report(
                f"{QA_DIR}/plots/stellarity_roc.png",
                caption="../report/qa_stellarity.rst",
                category="QA",
            ),
        params:
            backend=config["qa"]["extract"]["backend"],
            seed=config["seed"],
        log:
            f"{LOGS}/qa/qa_train_stellarity.log",
        conda:
            "../../envs/learn.yaml"
        script:
            "../../scripts/qa_train_stellarity.py"

    rule qa_train_som:
        input:
            sources=expand(rules.qa_extract_sources.output.sources, qabatch=QA_BATCHES),
            exposures=expand(rules.qa_make_exposures.output.exposures, qabatch=QA_BATCHES),
            stellarity=rules.qa_train_stellarity.output.model,
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
            som=QA_PRESET["som"],
            seed=config["seed"],
        threads: QA_THREADS
        log:
            f"{LOGS}/qa/qa_train_som.log",
        benchmark:
            f"{BENCHMARKS}/qa/qa_train_som.tsv"
        conda:
            "../../envs/learn.yaml"
        script:
            "../../scripts/qa_train_som.py"

    rule qa_representatives:
        input:
            fits=rules.qa_make_exposures.output.fits,
            exposures=rules.qa_make_exposures.output.exposures,
            ccds=rules.qa_extract_sources.output.ccds,
            sources=rules.qa_extract_sources.output.sources,
            som=rules.qa_train_som.output.som,
            stellarity=rules.qa_train_stellarity.output.model,
        output:
            reps=f"{QA_DIR}/representatives/b{{qabatch}}.npz",
            clusters=f"{QA_DIR}/representatives/b{{qabatch}}_sources.parquet",
        params:
            stamp=config["qa"]["stamp"],
            seed=config["seed"],
        log:
            f"{LOGS}/qa/qa_representatives_b{{qabatch}}.log",
        conda:
            "../../envs/learn.yaml"
        script:
            "../../scripts/qa_representatives.py"

    rule qa_train_cnn:
        input:
            reps=expand(rules.qa_representatives.output.reps, qabatch=QA_BATCHES),
            exposures=expand(rules.qa_make_exposures.output.exposures, qabatch=QA_BATCHES),
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
            models=QA_PRESET["models"],
            combine=QA_GRADE["combine"],
            seed=config["seed"],
        threads: QA_THREADS
        log:
            f"{LOGS}/qa/qa_train_cnn.log",
        benchmark:
            f"{BENCHMARKS}/qa/qa_train_cnn.tsv"
        conda:
            "../../envs/ml.yaml"
        script:
            "../../scripts/qa_train_cnn.py"

    rule qa_prepare_inference:
        input:
            model=getattr(rules.qa_train_cnn.output, QA_GRADE["model"].lower()),
            # its own training samples: int8 calibration and the accuracy guards
            reps=expand(rules.qa_representatives.output.reps, qabatch=QA_BATCHES),
        output:
            directory(f"{QA_DIR}/models/{QA_GRADE['model']}_inference"),
        params:
            kind=QA_GRADE["model"],
            seed=config["seed"],
            calibration_samples=QA_GRADE["inference"]["calibration_samples"],
            check_samples=QA_GRADE["inference"]["check_samples"],
        threads: QA_THREADS
        log:
            f"{LOGS}/qa/qa_prepare_inference.log",
        benchmark:
            f"{BENCHMARKS}/qa/qa_prepare_inference.tsv"
        conda:
            "../../envs/ml.yaml"
        script:
            "../../scripts/qa_prepare_inference.py"

    rule qa_grade_exposures:
        input:
            reps=expand(rules.qa_representatives.output.reps, qabatch=QA_BATCHES),
            clusters=expand(rules.qa_representatives.output.clusters, qabatch=QA_BATCHES),
            exposures=expand(rules.qa_make_exposures.output.exposures, qabatch=QA_BATCHES),
            ccds=expand(rules.qa_extract_sources.output.ccds, qabatch=QA_BATCHES),
            sources=expand(rules.qa_extract_sources.output.sources, qabatch=QA_BATCHES),
            failures=expand(rules.qa_extract_sources.output.failures, qabatch=QA_BATCHES),
            model=getattr(rules.qa_train_cnn.output, QA_GRADE["model"].lower()),
            inference=rules.qa_prepare_inference.output[0],
            metrics=rules.qa_train_cnn.output.metrics,
        output:
            grades=f"{QA_DIR}/grades.parquet",
        params:
            grade={k: QA_GRADE[k] for k in ("model", "fwhm_max", "ell_max")},
            precision=QA_GRADE["inference"]["precision"],
            pixel_scale=QA_PRESET["simulate"]["pixel_scale"],
            seed=config["seed"],
        threads: QA_THREADS
        log:
            f"{LOGS}/qa/qa_grade_exposures.log",
        benchmark:
            f"{BENCHMARKS}/qa/qa_grade_exposures.tsv"
        conda:
            "../../envs/ml.yaml"
        script:
            "../../scripts/qa_grade_exposures.py"

    rule qa_report:
        input:
            grades=rules.qa_grade_exposures.output.grades,
            metrics=rules.qa_train_cnn.output.metrics,
            stellarity=rules.qa_train_stellarity.output.metrics,
            reps=expand(rules.qa_representatives.output.reps, qabatch=0),
            exposures=expand(rules.qa_make_exposures.output.exposures, qabatch=0),
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
            grade={k: QA_GRADE[k] for k in ("model", "fwhm_max", "ell_max", "p_good_min")},
        log:
            f"{LOGS}/qa/qa_report.log",
        conda:
            "../../envs/report.yaml"
        script:
            "../../scripts/qa_report.py"

    ALL_TARGETS.extend(
        [
            rules.qa_grade_exposures.output.grades,
            rules.qa_report.output.summary,
            rules.qa_report.output.accuracy,
            rules.qa_train_som.output.hitmap,
        ]
    )
