"""``policy-topics evaluate``: score a logged model on any dataset config, as an MLflow run.

Which rows: on the dataset (same source file) the model was trained on, its own held-out test split
(the prep settings must match the training run's, or the test split is not the one it never saw); on
any other dataset, every prepared row (cross-domain, e.g. bill titles -> news headlines). Topics the
model never saw cannot be predicted: their documents are counted apart (count and share), headline
metrics are given on the shared topics, and again on all rows with the unseen ones counted as errors.

Everything that can fail (options, model reference, data, row choice) is checked before the run
opens, so a bad input leaves no run behind.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from policy_topics import taxonomy
from policy_topics.errors import ConfigError
from policy_topics.evaluation.agreement import SplitAgreement
from policy_topics.evaluation.metrics import SplitEvaluation
from policy_topics.jobs import review
from policy_topics.jobs.analysis import Analysis, EvaluationOptions

# What identifies a prepared dataset besides the source file (see data.prep.fingerprint).
_PREP_KEYS = ("data.text_column", "data.label_column", "data.format", "data.delimiter", "data.encoding",
              "data.unknown_labels", "data.extra_coded")


@dataclass
class TrainingRun:
    """What the evaluated model was trained on, from its MLflow run."""

    run_id: str | None
    params: dict[str, str]
    tags: dict[str, str]

    @property
    def dataset(self) -> str | None:
        return self.params.get("data.name")

    @property
    def source_identity(self) -> str | None:
        sha = self.params.get("data.source_sha256")
        if sha and sha != "n/a":
            return sha
        hub = self.params.get("data.hub_id")
        return f"hub:{hub}" if hub and hub != "None" else None

    @property
    def model_id(self) -> str | None:
        uri = self.tags.get("model_uri", "")
        return uri.removeprefix("models:/") if uri.startswith("models:/m-") else None


@dataclass
class Rows:
    """The rows to score and why."""

    frame: pd.DataFrame
    name: str  # test | all
    in_domain: bool
    reason: str


def choose_rows(prepared: Any, container: Mapping[str, Any], trained: TrainingRun) -> Rows:
    """The model's own test split when it was trained on this source, else all rows (cross-domain)."""
    from policy_topics.jobs.analysis import cv_frame
    from policy_topics.tracking.runs import flatten

    identity = prepared.source_identity
    pooled = [k.removesuffix(".source_identity") for k, v in trained.params.items()
              if k.startswith("pool.") and k.endswith(".source_identity") and v == identity]
    if pooled:
        raise ConfigError(
            f"the model was trained with the rows of {prepared.name} pooled in ({pooled[0]} of run "
            f"{trained.run_id}), so none of them is held out; evaluate it on another dataset")
    same_source = identity == trained.source_identity
    if not same_source:
        rows = cv_frame(prepared.splits)
        return Rows(rows, "all", False, f"cross-domain: all {len(rows):,} rows of {prepared.name} (the model was "
                                        f"trained on {trained.dataset or 'unknown data'})")
    where = f"run {trained.run_id}"
    folds = int(float(trained.params.get("evaluation.cv_folds", "0") or 0))
    if folds >= 2:
        raise ConfigError(
            f"the model was fit on every row of {prepared.name} ({folds}-fold cross-validation {where}), so no "
            "held-out rows are left; its out-of-fold metrics are in that run; evaluate it on another dataset")
    if trained.params.get("data.fingerprint") != prepared.fingerprint:
        current = flatten({"data": container["data"], "prep": container["prep"]})
        differ = [f"{k}={trained.params[k]}" for k in sorted(trained.params)
                  if (k.startswith("prep.") or k in _PREP_KEYS) and k in current and current[k] != trained.params[k]]
        fix = f"add {' '.join(differ)}" if differ else f"use the data and prep settings of {where} (its config.yaml)"
        raise ConfigError(
            f"the model was trained on {prepared.name} prepared differently (digest "
            f"{trained.params.get('data.fingerprint')}, these settings give {prepared.fingerprint}), so its test split "
            f"cannot be identified; {fix}")
    test = prepared.splits["test"]
    return Rows(test, "test", True, f"in-domain: the {len(test):,} rows of the test split the model never saw")


@dataclass
class EvaluationResult:
    run_id: str
    experiment: str
    rows: Rows
    metrics: dict[str, float]
    shared: SplitEvaluation
    everything: SplitEvaluation
    unseen: pd.DataFrame
    analyses: list[Analysis]
    ui_command: str
    agreement: SplitAgreement | None = None


def unseen_table(ev: SplitEvaluation, known: set[int]) -> pd.DataFrame:
    """Per topic the model never saw: documents, share of all rows, and where the model put them."""
    rows = []
    total = len(ev.y_true)
    y_pred = ev.y_pred
    for code in sorted(set(ev.y_true.tolist()) - known):
        mask = ev.y_true == code
        count = int(mask.sum())
        went = pd.Series(y_pred[mask]).value_counts().head(3)
        rows.append({"code": int(code), "topic": taxonomy.topic_name(int(code)), "docs": count, "share": count / total,
                     "predicted_as": "; ".join(f"{taxonomy.label(int(c))} {n / count:.0%}" for c, n in went.items())})
    return pd.DataFrame(rows, columns=["code", "topic", "docs", "share", "predicted_as"])


def run_evaluation(cfg: DictConfig) -> EvaluationResult:
    """Run the whole job for a composed ``conf/evaluate.yaml``, naming topic codes as the dataset's codebook
    does (``data.extra_topics``) while it runs."""
    with taxonomy.named(cfg.data.get("extra_topics")):
        return _run_evaluation(cfg)


def _run_evaluation(cfg: DictConfig) -> EvaluationResult:
    from policy_topics.data.prep import prepare_dataset
    from policy_topics.evaluation.metrics import score
    from policy_topics.jobs.stages import Stages
    from policy_topics.reporting import reporter
    from policy_topics.tracking.registry import load, resolve, tracking_client
    from policy_topics.tracking.store import check_reachable, tracking_target

    stages = Stages()
    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[assignment]
    options = EvaluationOptions.from_config(container["evaluation"])
    review.check_settings(container["evaluation"])
    for key, on in (("cv_folds", options.cv_folds), ("compare_calibration", options.compare_calibration),
                    ("learning_curve.enabled", options.learning_curve)):
        if on:
            raise ConfigError(f"evaluation.{key} applies to policy-topics train (it fits models); evaluate scores "
                              "a fixed model: drop that override")
    target = tracking_target(container["tracking"])
    check_reachable(target)
    reporter().line(f"policy-topics evaluate: model_ref={container.get('model_ref') or 'the champion'} "
         f"data={container['data']['name']} -> {target.uri} (experiment '{target.experiment}')")
    with stages.stage("find model") as note:
        resolved = resolve(container.get("model_ref"), target.uri)
        run = tracking_client(target.uri).get_run(resolved.run_id) if resolved.run_id else None
        trained = TrainingRun(resolved.run_id, dict(run.data.params) if run else {}, dict(run.data.tags) if run else {})
        note["detail"] = f"{resolved.uri}, trained on {trained.dataset or 'unknown data'}"
    with stages.stage("prepare data") as note:
        prepared = prepare_dataset(container["data"], container["prep"], container["paths"])
        rows = choose_rows(prepared, container, trained)  # before loading: a refusal comes fast
        note["detail"] = rows.reason
    with stages.stage("load model") as note:
        loaded = load(resolved)
        note["detail"] = f"{len(loaded.predictor.codes)} topics"
    with stages.stage("predict") as note:
        texts = rows.frame["text"].tolist()
        classes = np.asarray(loaded.predictor.codes)
        everything = score(rows.frame["label"].to_numpy(), loaded.predictor.predict_proba(texts), classes, rows.name,
                           texts)
        known = set(classes.tolist())
        seen = np.isin(everything.y_true, classes)
        shared = everything.subset(seen, "shared")
        unseen = unseen_table(everything, known)
        note["detail"] = f"{len(texts):,} docs, {int((~seen).sum()):,} of them in topics the model never saw"
    with stages.stage("agreement"):
        agreement = review.evaluation_agreement(container, everything, loaded.predictor, rows.in_domain, prepared.name)

    from policy_topics.tracking.runs import start_run

    run_name = container["tracking"].get("run_name") or f"evaluate {trained.dataset} model on {prepared.name}"
    with start_run(target, run_name) as eval_run:
        metrics, analyses = _log(container, prepared, rows, resolved.uri, trained, everything, shared, unseen,
                                 options, stages, agreement)
        return EvaluationResult(eval_run.info.run_id, target.experiment, rows, metrics, shared, everything, unseen,
                                analyses, target.ui_command(eval_run.info.experiment_id), agreement)


def _log(container: Mapping[str, Any], prepared: Any, rows: Rows, model_uri: str, trained: TrainingRun,
         everything: SplitEvaluation, shared: SplitEvaluation, unseen: pd.DataFrame, options: EvaluationOptions,
         stages: Any, agreement: SplitAgreement) -> tuple[dict[str, float], list[Analysis]]:
    import mlflow

    from policy_topics.evaluation.report import plot_confusion
    from policy_topics.jobs.analysis import analyse
    from policy_topics.tracking.runs import flatten, git_state

    with stages.stage("log setup"):
        mlflow.log_params(flatten({"model_ref": container.get("model_ref"), "data": container["data"],
                                   "prep": container["prep"], "evaluation": container["evaluation"]}))
        mlflow.log_params({"data.fingerprint": prepared.fingerprint, "data.source_sha256": prepared.source_sha256
                           or "n/a", "rows": rows.name})
        mlflow.set_tags({**git_state(), "dataset": prepared.name, "evaluation": "in-domain" if rows.in_domain
                         else "cross-domain", "evaluated_model_uri": model_uri,
                         "evaluated_run_id": trained.run_id or "", "evaluated_model_id": trained.model_id or "",
                         "evaluated_dataset": trained.dataset or ""})
        dataset = mlflow.data.from_pandas(rows.frame, source=prepared.source, name=f"{prepared.name}-{rows.name}",
                                          digest=prepared.fingerprint, targets="label")
        mlflow.log_input(dataset, context="evaluation")
    title = f"{trained.dataset} model on {prepared.name}"
    with stages.stage("analyse predictions"), tempfile.TemporaryDirectory(prefix="policy-topics-eval-") as tmp:
        out = Path(tmp)
        has_unseen = not unseen.empty
        analyses = [analyse(shared, options, out, "shared", "shared topics", title, errors=not has_unseen)]
        if has_unseen:
            analyses.append(analyse(everything, options, out, "all", "all rows, unseen topics = errors", title))
        metrics = {f"{ev.split}_{k}": v for ev in (shared, everything) for k, v in ev.metrics.items()}
        metrics.update({"unseen_n_docs": float(unseen["docs"].sum()), "unseen_share": float(unseen["share"].sum()),
                        "unseen_topics": float(len(unseen))})
        for analysis in analyses:
            metrics.update(analysis.metrics())
        metrics.update(agreement.metrics())
        per_topic = everything.per_topic.assign(seen_in_training=lambda t: t.index.isin(shared.classes))
        per_topic.to_csv(out / "per_topic.csv")
        everything.confusion.to_csv(out / "confusion.csv")
        plot_confusion(everything.confusion, out / "confusion.png", f"{title}: {rows.name} rows "
                       f"(shared-topic macro-F1 {shared.metrics['macro_f1']:.3f})")
        unseen.to_csv(out / "unseen_topics.csv", index=False)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out / "report.md").write_text(report(title, model_uri, trained, rows, shared, everything, unseen, analyses,
                                              agreement.markdown()))
        mlflow.log_artifacts(str(out))
    with stages.stage("log metrics"):
        # Linked to the evaluated LoggedModel and the scored dataset, so the model's page lists them too.
        mlflow.log_metrics(metrics, model_id=trained.model_id, dataset=dataset)
    return metrics, analyses


def headline_rows(shared: SplitEvaluation, everything: SplitEvaluation) -> pd.DataFrame:
    return pd.DataFrame([
        {"rows": label, "docs": int(ev.metrics["n_docs"]), "accuracy": ev.metrics["accuracy"],
         "macro-F1": ev.metrics["macro_f1"], "weighted-F1": ev.metrics["weighted_f1"]}
        for label, ev in (("shared topics", shared), ("all rows (unseen topics = errors)", everything))])


def report(title: str, model_uri: str, trained: TrainingRun, rows: Rows, shared: SplitEvaluation,
           everything: SplitEvaluation, unseen: pd.DataFrame, analyses: list[Analysis],
           agreement: list[str] | None = None) -> str:
    """The evaluation run's ``report.md``."""
    from policy_topics.evaluation.report import markdown_table

    lines = [f"# Evaluation: {title}", "", f"Model `{model_uri}` (training run `{trained.run_id}`, dataset "
             f"{trained.dataset}). Rows: {rows.reason}.", "", *markdown_table(headline_rows(shared, everything)), ""]
    if unseen.empty:
        lines.append("Every topic of these rows was seen in training.")
    else:
        lines += [f"## Topics the model never saw: {int(unseen['docs'].sum()):,} documents "
                  f"({unseen['share'].sum():.1%})", "", *markdown_table(unseen, "{:.3f}")]
    if agreement:
        lines += ["", "## Agreement with the given codes", "", *agreement]
    for analysis in analyses:
        lines += ["", f"## {analysis.what}", "", *[line.strip() for line in analysis.lines()]]
    lines += ["", "## Per topic", "", *markdown_table(everything.per_topic.reset_index())]
    return "\n".join(lines) + "\n"


def summary(result: EvaluationResult) -> str:
    """The one-screen end of the command."""
    lines = ["", f"  {'rows':<36} {'docs':>6}  accuracy  macro-F1  weighted-F1"]
    for _, row in headline_rows(result.shared, result.everything).iterrows():
        lines.append(f"  {row['rows']:<36} {row['docs']:6,}  {row['accuracy']:8.3f}  {row['macro-F1']:8.3f}  "
                     f"{row['weighted-F1']:11.3f}")
    unseen = result.unseen
    if unseen.empty:
        lines.append("  unseen topics: none (every topic of these rows was seen in training)")
    else:
        lines.append(f"  unseen topics: {int(unseen['docs'].sum()):,} docs ({unseen['share'].sum():.1%}) in "
                     f"{len(unseen)} topics: " + ", ".join(f"{r.code} {r.topic} {r.docs}" for r in unseen.itertuples()))
    for analysis in result.analyses:
        lines += analysis.lines()
    lines += result.agreement.lines() if result.agreement is not None else []
    lines += ["", f"  run id      {result.run_id}  (experiment '{result.experiment}')",
              f"  MLflow UI   {result.ui_command}"]
    return "\n".join(lines)

