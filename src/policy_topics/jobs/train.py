"""The training job: prepare data, fit, evaluate, log everything to MLflow.

Data preparation happens before MLflow is touched, so bad input leaves no run behind; once the run is
open, a failure marks it FAILED.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import Pipeline

from policy_topics import taxonomy
from policy_topics.evaluation.metrics import SplitEvaluation
from policy_topics.jobs import review
from policy_topics.jobs.stages import Stages
from policy_topics.reporting import reporter

_NGRAM_SAMPLE = 20_000
TIMING_PREFIX = "timing/"  # stage timings, apart from the quality metrics (MLflow's UI groups them by prefix)


@dataclass
class TrainingResult:
    run_id: str
    experiment: str
    metrics: dict[str, float]
    model_uri: str | None
    registered: str | None
    ui_command: str
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)  # cross-validation, coverage, calibration lines


def run_training(cfg: DictConfig) -> TrainingResult:
    """Run the whole job for a composed ``conf/train.yaml``, naming topic codes as the dataset's codebook does
    (``data.extra_topics``) while it runs."""
    with taxonomy.named(cfg.data.get("extra_topics")):
        return _run_training(cfg)


def _run_training(cfg: DictConfig) -> TrainingResult:
    from policy_topics.data.prep import prepare_dataset
    from policy_topics.jobs.analysis import EvaluationOptions
    from policy_topics.tracking.store import check_reachable, tracking_target

    stages = Stages()
    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[assignment]
    target = tracking_target(container["tracking"])
    check_reachable(target)
    options = EvaluationOptions.from_config(container["evaluation"])
    review.check_settings(container["evaluation"])
    reporter().line(f"policy-topics train: data={container['data']['name']} model={container['model']['name']} "
                    f"-> {target.uri} (experiment '{target.experiment}')")

    from policy_topics.features.embeddings import CACHE_WRITES_ENV
    from policy_topics.jobs.fitting import warm_up

    os.environ[CACHE_WRITES_ENV] = "1"  # training keeps its embeddings (predicting never does); fits inherit it

    if not container["model"].get("stream"):  # (a streamed fit starts its own hashing processes)
        warm_up(container)  # worker processes start while the data is prepared
    with stages.stage("prepare data") as note:
        prepared = prepare_dataset(container["data"], container["prep"], container["paths"])
        sizes = ", ".join(f"{k} {len(v):,}" for k, v in prepared.splits.items())
        note["detail"] = f"{sizes} ({'reused' if prepared.reused else 'built'} {prepared.path.name})"
    cleaning = prepared.report
    if cleaning.get("rows_kept") != cleaning.get("rows_read") or cleaning.get("subtopic_codes_mapped"):
        reporter().line(f"    cleaning: {cleaning['summary']}")
    options = _small_corpus(container, prepared.splits, options)
    options.check_folds(pd.concat(prepared.splits.values())["label"])

    from policy_topics.models.out_of_core import check_config, is_streaming
    from policy_topics.models.pipeline import build_pipeline, check_parameters
    from policy_topics.tracking.runs import log_pool, readable_run_name, start_run

    check_config(container["features"], container["model"], container["evaluation"])
    pool = _prepare_pool(container, prepared, stages, is_streaming(container["model"]))
    _embed_once(container, prepared.splits, stages)
    smallest = int(prepared.splits["train"]["label"].value_counts().min())
    check_parameters(build_pipeline(container["features"], container["model"], smallest))
    from policy_topics.tracking.loop import lineage, log_lineage

    sheets = prepared.report.get("extra_coded", [])
    if sheets and is_streaming(container["model"]):  # a streamed fit reads the cached splits, without the sheets
        from policy_topics.errors import ConfigError

        raise ConfigError("coded sheets (data.extra_coded) cannot join streamed (out-of-core) training; train in "
                          "memory, or add the coded rows to the data file")
    loop = lineage(sheets, target.uri)  # coded sheets appended: the run their model came from, looked up now
    if loop is not None and loop.note:
        reporter().warn(loop.note)

    with ExitStack() as stack:
        with stages.stage("start MLflow run"):
            run = stack.enter_context(start_run(target, container["tracking"].get("run_name")
                                                or readable_run_name(container)))
        if pool:
            log_pool(pool)
        if loop is not None:
            log_lineage(loop, sheets)
        return _fit_evaluate_log(cfg, container, prepared, stages, target, run.info.run_id, options)


def _small_corpus(container: dict[str, Any], splits: dict[str, pd.DataFrame], options: Any) -> Any:
    """Held-out splits too small to measure anything: say so, and switch to cross-validation where allowed
    (see :mod:`policy_topics.jobs.small_corpus`); the options to evaluate with."""
    from dataclasses import replace

    from policy_topics.data.splits import split_mode
    from policy_topics.jobs import small_corpus

    settings = dict(container["evaluation"].get("small_corpus") or {})
    own_split = split_mode(container["data"], container["prep"]) == "predefined"
    if container["model"].get("stream") or own_split:  # a streamed fit has no cross-validation; a dataset's own
        settings["switch_to_cv"] = False  # split is kept, so its scores compare with published ones
    found = small_corpus.check(splits, settings, options.cv_folds, small_corpus.command_line_overrides())
    if found is None:
        return options
    reporter().warn(found.message())
    container["_small_corpus"] = found.message().removeprefix("small corpus: ")
    if not found.switched:
        return options
    container["evaluation"]["cv_folds"] = found.folds
    return replace(options, cv_folds=found.folds)


def _embed_once(container: dict[str, Any], splits: dict[str, pd.DataFrame], stages: Stages) -> None:
    """Embed every prepared text (and pooled row) once, into the embedding cache, before the fits: the
    fit on train and the refit on train+validation run in parallel processes and would each embed the same
    texts (twice the slowest stage of an embedding run)."""
    from policy_topics.data.pooling import POOL_ROWS
    from policy_topics.features.embeddings import SentenceEmbeddings

    spec = container["features"].get("embeddings") or {}
    if not spec.get("enabled") or not spec.get("cache", True):
        return
    frames = [*splits.values(), *([container[POOL_ROWS]] if container.get(POOL_ROWS) is not None else [])]
    texts = list(dict.fromkeys(t for frame in frames for t in frame["text"].tolist()))
    with stages.stage("embed texts") as note:
        SentenceEmbeddings(model=str(spec.get("model", "all-MiniLM-L6-v2")), batch_size=int(spec.get("batch_size", 64)),
                           cache_dir=spec.get("cache_dir"), cache_min_batch=1).embed(texts)
        note["detail"] = f"{len(texts):,} texts, each once (cached for every fit)"


def _prepare_pool(container: dict[str, Any], prepared: Any, stages: Stages, streaming: bool) -> list[Any]:
    """Prepare the ``pool`` datasets and hand their rows to every fit (under ``POOL_ROWS``)."""
    from policy_topics.data.pooling import POOL_ROWS, pooled_rows, prepare_pool
    from policy_topics.errors import ConfigError

    if not container.get("pool"):
        return []
    if streaming:
        raise ConfigError("pooled datasets (pool.*) cannot join streamed (out-of-core) training; "
                          "drop the pool.* entries or train in memory")
    with stages.stage("prepare pool") as note:
        parts = prepare_pool(container["pool"], container["prep"], container["paths"], prepared)
        note["detail"] = "; ".join(part.summary for part in parts)
    container[POOL_ROWS] = pooled_rows(parts)
    return parts


def fit_and_evaluate(container: dict[str, Any], splits: dict[str, pd.DataFrame],
                     stages: Stages) -> tuple[Pipeline, list[SplitEvaluation]]:
    """Fit on train, score validation, refit on train+validation (``refit``), score test (unless
    ``evaluate_test`` is off, as in hyperparameter searches, and a validation split was scored).

    The fit and the refit do not depend on each other: with ``fit_processes`` > 1 each runs, with the
    scoring of its split, in its own worker process, at the same time."""
    from policy_topics.data.pooling import pooled_note
    from policy_topics.jobs.analysis import final_training_rows
    from policy_topics.jobs.fitting import FitJob, run_jobs, worker_count

    train, validation, test = splits["train"], splits["validation"], splits["test"]
    score_test = container.get("evaluate_test", True) or not len(validation)
    jobs = [FitJob(train, [(validation, "validation")] if len(validation) else [])]
    names = ["fit"]
    if len(validation) and container["refit"]:
        jobs.append(FitJob(final_training_rows(container, splits)))
        names.append("refit on train+val")
        jobs[0].keep = False
    if score_test:
        jobs[-1].held_out.append((test, "test"))
    workers = worker_count(container.get("fit_processes", 1), len(jobs))
    with stages.stage("fit + evaluate") as note:
        results = run_jobs(container, jobs)
        note["detail"] = f"{workers} processes at once" if workers > 1 else ""
    pooled = pooled_note(container)
    for name, job, result in zip(names, jobs, results, strict=True):
        for step, seconds in result.seconds.items():
            detail = f"{len(job.frame):,} docs{pooled}" if step == "fit" else ""
            stages.record(name if step == "fit" else step, seconds, detail)
    pipeline = results[-1].pipeline
    assert pipeline is not None  # the last job keeps its model
    return pipeline, [ev for result in results for ev in result.evaluations]


def _fit_evaluate_log(cfg: DictConfig, container: dict[str, Any], prepared: Any, stages: Stages,
                      target: Any, run_id: str, options: Any) -> TrainingResult:
    import mlflow

    from policy_topics.evaluation.report import ngram_table
    from policy_topics.jobs import analysis, model_card
    from policy_topics.jobs.autocode import choose
    from policy_topics.models.pipeline import top_ngrams
    from policy_topics.tracking import runs
    from policy_topics.tracking.runs import DESCRIPTION_TAG, headline

    train = prepared.splits["train"]
    with stages.stage("log setup"):
        runs.log_setup(container, OmegaConf.to_yaml(cfg, resolve=True), prepared.splits, prepared.name,
                      prepared.fingerprint, prepared.source, prepared.source_sha256, prepared.report,
                      prepared.local_file)

    pipeline, evaluations, cv = _fit(container, prepared, stages, options)
    with stages.stage("top n-grams"):
        sample = train["text"].head(_NGRAM_SAMPLE).tolist()  # names the columns of a hashing model
        ngrams = ngram_table(top_ngrams(pipeline, int(container["evaluation"]["top_ngrams"]), sample))

    findings = analysis.analyse_training(container, prepared.splits, evaluations, cv, pipeline, options, stages)
    metrics = {f"{ev.split.replace('validation', 'val')}_{k}": v for ev in evaluations for k, v in ev.metrics.items()}
    metrics.update(findings.metrics)
    metrics.update(_unseen_metrics(container, prepared, evaluations, cv is not None))
    autocode = choose(evaluations, cv is not None, options.grid, options.target_accuracy)
    metrics.update(autocode.metrics())
    with stages.stage("agreement"):
        agreement = review.training_agreement(container, evaluations, cv is not None, autocode.threshold)
    metrics.update(agreement.metrics())
    with stages.stage("log results"):
        _log_results(container, prepared, evaluations, ngrams, metrics, stages, agreement.markdown())

    model_uri = registered = None
    if container["tracking"].get("log_model", True):
        model_uri, registered = _log_model(container, prepared, pipeline, evaluations, cv is not None,
                                           autocode.settings(), stages)
    mlflow.set_tag(DESCRIPTION_TAG, headline(container, metrics, registered))
    with stages.stage("log review sheets"):
        sheets = review.log_review_sheets(container, prepared, evaluations, cv is not None, pipeline, run_id,
                                          model_uri, target.uri)
    with stages.stage("log model card"):
        mlflow.log_text(model_card.render(container, prepared, evaluations, findings, pipeline, run_id, model_uri,
                                          registered, agreement), "model_card.md")
    return TrainingResult(run_id, target.experiment, metrics, model_uri, registered,
                          target.ui_command(mlflow.active_run().info.experiment_id), stages.timings,
                          findings.lines + autocode.lines() + agreement.lines() + sheets + _hints(container, metrics))


def _fit(container: dict[str, Any], prepared: Any, stages: Stages,
         options: Any) -> tuple[Any, list[SplitEvaluation], Any]:
    """The final model and its split evaluations: under cross-validation, streamed from the cached splits
    (out of core), or fit in memory; the cross-validation result, or None."""
    from policy_topics.jobs import analysis
    from policy_topics.jobs.out_of_core import fit_and_evaluate as fit_and_evaluate_out_of_core
    from policy_topics.models.out_of_core import is_streaming

    if options.cv_folds:
        return analysis.cross_validate_and_fit(container, prepared.splits, options, stages)
    if is_streaming(container["model"]):
        files = {name: prepared.path / f"{name}.parquet" for name in prepared.splits}
        return (*fit_and_evaluate_out_of_core(container, files, stages, prepared.topics), None)
    return (*fit_and_evaluate(container, prepared.splits, stages), None)


def _log_model(container: dict[str, Any], prepared: Any, pipeline: Any, evaluations: list[SplitEvaluation],
               cross_validated: bool, autocode_settings: dict[str, Any], stages: Stages) -> tuple[str, str | None]:
    """Log the model with the settings it predicts with, and register it when asked: (model URI, models:/ ref)."""
    from policy_topics.jobs.autocode import familiarity_reference
    from policy_topics.tracking import runs

    with stages.stage("log model") as note:
        name = container["tracking"].get("register_as")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name)) if name else None
        settings = {"text_form": container["prep"]["unicode_form"], **autocode_settings,
                    "topic_names": {str(c): taxonomy.topic_name(int(c)) for c in pipeline.classes_},
                    "familiarity": familiarity_reference(pipeline, prepared.splits, evaluations, cross_validated,
                                                         int(container["seed"]))}
        texts = prepared.splits["train"]["text"].head(3).tolist()
        model_uri, version = runs.log_model(pipeline, texts, name, settings)
        registered = f"models:/{name}/{version}" if version else None
        if registered:
            note["detail"] = f"registered {registered}"
    return model_uri, registered


def _unseen_metrics(container: dict[str, Any], prepared: Any, evaluations: list[SplitEvaluation],
                    cross_validated: bool) -> dict[str, float]:
    """``test_unseen_*``: the test figures on the rows whose text the logged model was not fit on, for a dataset
    that ships its own splits (they can share texts; the ``test_*`` figures score all rows, as published)."""
    from policy_topics.evaluation.metrics import unseen_rows
    from policy_topics.jobs.analysis import final_training_rows

    test = [ev for ev in evaluations if ev.split == "test"]
    if cross_validated or not test or prepared.report.get("split") != "predefined":
        return {}
    unseen = unseen_rows(test[0], final_training_rows(container, prepared.splits)["text"])
    return {} if unseen is None else {f"{unseen.split}_{k}": v for k, v in unseen.metrics.items()}


def _hints(container: dict[str, Any], metrics: dict[str, float]) -> list[str]:
    from policy_topics.jobs.small_corpus import hints

    score = metrics.get("cv_macro_f1_mean", metrics.get("test_macro_f1"))
    return hints(container, score, "_small_corpus" in container)


def _log_results(container: dict[str, Any], prepared: Any, evaluations: list[SplitEvaluation], ngrams: pd.DataFrame,
                 metrics: dict[str, float], stages: Stages, agreement: list[str]) -> None:
    """Metrics (quality and stage timings) and the per-split tables, confusion plot, top n-grams and report."""
    import mlflow

    from policy_topics.evaluation.report import markdown_report, plot_confusion

    with tempfile.TemporaryDirectory(prefix="policy-topics-run-") as tmp:
        out = Path(tmp)
        for ev in evaluations:
            ev.per_topic.to_csv(out / f"per_topic_{ev.split}.csv")
            ev.confusion.to_csv(out / f"confusion_{ev.split}.csv")
        test = evaluations[-1]
        plot_confusion(test.confusion, out / f"confusion_{test.split}.png",
                       f"{prepared.name}: {container['model']['name']} on the {test.split} split "
                       f"(macro-F1 {test.metrics['macro_f1']:.3f})")
        ngrams.to_csv(out / "top_ngrams.csv", index=False)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out / "report.md").write_text(markdown_report(
            f"{prepared.name} / {container['model']['name']}", evaluations, ngrams,
            prepared.report["summary"], agreement))
        mlflow.log_metrics(metrics)
        mlflow.log_metrics({TIMING_PREFIX + re.sub(r"\W+", "_", k) + "_s": v for k, v in stages.timings.items()})
        mlflow.log_artifacts(str(out))


def summary(result: TrainingResult) -> str:
    """The one-screen end of the command: metrics, run id, and how to look at it."""
    lines = ["", "  split        accuracy  macro-F1  weighted-F1   docs"]
    for split in ("val", "test", "test_unseen", "oof"):
        if f"{split}_accuracy" in result.metrics:
            m = {k[len(split) + 1:]: v for k, v in result.metrics.items() if k.startswith(split + "_")}
            lines.append(f"  {split:<12} {m['accuracy']:8.3f}  {m['macro_f1']:8.3f}  {m['weighted_f1']:11.3f}"
                         f"  {int(m['n_docs']):5d}")
    lines += ["", *result.notes] if result.notes else []
    lines += [
        "",
        f"  run id      {result.run_id}  (experiment '{result.experiment}')",
        f"  model       {result.model_uri or 'not logged (tracking.log_model=false)'}",
    ]
    if result.registered:
        name, version = result.registered.removeprefix("models:/").rsplit("/", 1)
        lines += [f"  registered  {result.registered}  (make it the champion: policy-topics promote {name} {version})"]
    lines += [
        f"  MLflow UI   {result.ui_command}",
    ]
    return "\n".join(lines)
