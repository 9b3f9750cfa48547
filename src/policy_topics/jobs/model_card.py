"""The model card of a training run (``model_card.md``): what the model is for, what it was trained
on (with the data's digest), how it was configured, how well it does (with intervals after
cross-validation), how much it can auto-code at the target accuracy, and where it is weak.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics import taxonomy
from policy_topics.evaluation.agreement import SplitAgreement
from policy_topics.evaluation.metrics import SplitEvaluation
from policy_topics.evaluation.report import markdown_table
from policy_topics.jobs.analysis import TrainingAnalysis, cv_frame, final_training_rows


def _config_lines(container: Mapping[str, Any], calibrated: bool) -> list[str]:
    features, model, prep = container["features"], container["model"], container["prep"]
    word = features["word"]
    char = features.get("char") or {}
    estimator = {k: v for k, v in model["estimator"].items() if k != "_target_"}
    lines = [
        f"- Features: TF-IDF word n-grams {tuple(word['ngram_range'])} (min_df {word.get('min_df')}, sublinear tf "
        f"{word.get('sublinear_tf')})" + (f" + char_wb n-grams {tuple(char['ngram_range'])}" if char.get("enabled")
                                          else ""),
        f"- Classifier: `{model['estimator']['_target_']}` ({model['name']}): "
        + ", ".join(f"{k}={json.dumps(v)}" for k, v in estimator.items()),
        f"- Probabilities: {_probabilities(model, calibrated)}",
        f"- Seed {container['seed']}; prep: {prep['unicode_form']}, test_size {prep['test_size']}, val_size "
        f"{prep['val_size']}, min_docs_per_topic {prep['min_docs_per_topic']}, rare_topics {prep['rare_topics']}",
    ]
    return lines


def _probabilities(model: Mapping[str, Any], calibrated: bool) -> str:
    calibration = model.get("calibration") or {}
    if not calibrated:
        return "the estimator's own predict_proba (not recalibrated)"
    return (f"{calibration.get('method', 'sigmoid')} calibration, {calibration.get('cv', 2)}-fold cross-validated "
            f"(ensemble={calibration.get('ensemble', False)})")


def _evaluation_lines(evaluations: list[SplitEvaluation], report: TrainingAnalysis) -> list[str]:
    if report.cv is not None:
        cv = report.cv
        table = cv.summary_table().drop(columns="folds")
        table.insert(1, "folds", [" ".join(f"{v:.3f}" for v in cv.folds[m]) for m in table["metric"]])
        return [f"Stratified {cv.k}-fold cross-validation (seed {cv.seed}) on all "
                f"{int(cv.folds['n_test'].sum()):,} prepared documents; each fold's model is scored on the "
                "documents it did not see. `ci95`: 95% confidence interval of the mean (t, k-1 df; optimistic, "
                "since folds share training documents); `pi95`: 95% prediction interval for the score of a single "
                "fold. The logged model is then fit on all documents.", "", *markdown_table(table), "",
                f"Pooled out-of-fold: accuracy {cv.oof.metrics['accuracy']:.3f}, macro-F1 "
                f"{cv.oof.metrics['macro_f1']:.3f}, weighted-F1 {cv.oof.metrics['weighted_f1']:.3f}."]
    rows = pd.DataFrame([{"split": ev.split, "docs": int(ev.metrics["n_docs"]), "accuracy": ev.metrics["accuracy"],
                          "macro-F1": ev.metrics["macro_f1"], "weighted-F1": ev.metrics["weighted_f1"]}
                         for ev in evaluations])
    return ["A single stratified train/validation/test split; the test split was never used to fit or choose "
            "anything. No intervals: run with `evaluation.cv_folds=5` for fold-to-fold spread.", "",
            *markdown_table(rows)]


def _per_topic(evaluations: list[SplitEvaluation], report: TrainingAnalysis, train_counts: pd.Series) -> pd.DataFrame:
    if report.cv is not None:
        table = report.cv.per_topic()[["code", "topic", "support", "f1_mean", "f1_std", "f1_ci95_low", "f1_ci95_high",
                                       "f1_pi95_low", "f1_pi95_high"]]
        return table.rename(columns={"support": "docs"})
    test = evaluations[-1].per_topic.reset_index()
    test.insert(2, "training docs", test["code"].map(train_counts).fillna(0).astype(int))
    return test.rename(columns={"support": f"{evaluations[-1].split} docs"})


def _extra_coded_lines(report: Mapping[str, Any]) -> list[str]:
    """The coded sheets appended to the training split (``data.extra_coded``; see policy_topics.data.extra)."""
    sheets = report.get("extra_coded") or []
    return [f"- Coded sheet appended to the training split: `{Path(s['path']).name}` (sha256 `{s['sha256']}`), "
            f"{s['appended']:,} of its {s['coded_rows']:,} coded rows" for s in sheets]


def _pool_lines(container: Mapping[str, Any]) -> list[str]:
    """The pooled datasets whose rows joined every fit (see policy_topics.data.pooling)."""
    from policy_topics.data.pooling import POOL_ROWS

    rows = container.get(POOL_ROWS)
    if rows is None:
        return []
    names = ", ".join(f"{entry['name']} (weight {float(entry.get('weight', 1.0)):g})"
                      for entry in container["pool"].values())
    return [f"- Pooled training rows: {len(rows):,} from {names}, of this dataset's topics and none of its "
            "texts, joined every fit; every score below is on this dataset's own splits"]


def render(container: Mapping[str, Any], prepared: Any, evaluations: list[SplitEvaluation], report: TrainingAnalysis,
           pipeline: Any, run_id: str, model_uri: str | None, registered: str | None,
           agreement: SplitAgreement) -> str:
    """The card as Markdown."""
    from policy_topics.models.pipeline import is_calibrated

    classes = [int(c) for c in pipeline.classes_]
    data = container["data"]
    analysis = report.analysis
    train_rows = cv_frame(prepared.splits) if report.cv else final_training_rows(container, prepared.splits)
    train_counts = train_rows["label"].value_counts()
    title = registered or f"{data['name']} / {container['model']['name']}"
    lines = [
        f"# Model card: {title}", "",
        f"MLflow run `{run_id}`; model `{model_uri or 'not logged'}`"
        + (f"; registered as `{registered}`" if registered else "") + ".", "",
        "## Intended use", "",
        f"Assigns one of {len(classes)} Comparative Agendas Project major topics to a short policy text, with a "
        "probability. Meant for coding documents like the training data (see Data) and for triage: auto-code the "
        "documents above a confidence threshold (see Auto-coding) and give the rest to human coders. Not a "
        "substitute for a codebook-trained coder on texts unlike the training data.", "",
        "## Data", "",
        f"- Dataset: **{data['name']}**: {str(data.get('description') or '').strip()}",
        f"- Source: {prepared.source}",
        f"- File sha256: `{prepared.source_sha256 or 'n/a'}`; prepared-data digest (fingerprint of source, read "
        f"options and prep config): `{prepared.fingerprint}`",
        f"- Cleaning: {prepared.report['summary']}",
        "- Split: " + ", ".join(f"{name} {len(frame):,}" for name, frame in prepared.splits.items())
        + (f" (cross-validation used all {len(train_rows):,})" if report.cv is not None else ""),
        f"- Topics: {len(classes)}; documents per topic in the training data from {int(train_counts.min())} "
        f"({taxonomy.label(int(train_counts.idxmin()))}) to {int(train_counts.max())} "
        f"({taxonomy.label(int(train_counts.idxmax()))})",
        *_extra_coded_lines(prepared.report), *_pool_lines(container), "",
        "## Model and configuration", "",
        *_config_lines(container, is_calibrated(pipeline)),
        "- Full resolved config: the run's `config.yaml` artifact and params.", "",
        "## Evaluation", "",
        *([f"**Small corpus**: {container['_small_corpus']}.", ""] if container.get("_small_corpus") else []),
        *_evaluation_lines(evaluations, report), "",
        "## Agreement with the given codes", "",
        *agreement.markdown(), "",
        "## Per topic", "",
        *markdown_table(_per_topic(evaluations, report, train_counts)), "",
        f"## Auto-coding: coverage at {analysis.point.target:.0%} accuracy", "",
        f"On {analysis.what}: {analysis.point.describe()}. Full table and plot: `coverage/` artifacts.", "",
        "## Calibration", "",
        f"On {analysis.what}: expected calibration error {analysis.calibration['ece']:.3f} "
        f"({container['evaluation'].get('calibration_bins', 10)} bins, top-topic probability), multiclass Brier score "
        f"{analysis.calibration['brier']:.3f} (0 is perfect, 2 the worst).",
    ]
    if analysis.comparison:
        lines.append("Before/after: " + "; ".join(f"{name}: ECE {m['ece']:.3f}, Brier {m['brier']:.3f}"
                                                  for name, m in analysis.comparison.items()) + ".")
    if report.curve is not None:
        from policy_topics.evaluation.learning_curve import summarise

        lines += ["", "## Learning curve", "", *markdown_table(summarise(report.curve))]
    lines += ["", "## Known limits", "", *_limits(evaluations, report, classes, train_counts, container), "",
              "## Reproduce", "",
              f"`policy-topics train data={data['name']} ...` with the run's `config.yaml` (Hydra overrides for every "
              "value); the git commit is in the run's tags.", ""]
    return "\n".join(lines)


def _limits(evaluations: list[SplitEvaluation], report: TrainingAnalysis, classes: list[int],
            train_counts: pd.Series, container: Mapping[str, Any]) -> list[str]:
    little = int(container["evaluation"].get("little_support", 50))
    per_topic = evaluations[-1].per_topic
    lines = []
    small = train_counts[train_counts < little].sort_values()
    if len(small):
        lines.append(f"- Topics with fewer than {little} training documents (their scores are noisy): " + ", ".join(
            f"{taxonomy.label(int(c))} ({int(n)} docs, F1 {per_topic.loc[c, 'f1']:.2f})" for c, n in small.items()))
    weakest = per_topic.sort_values("f1").head(3)
    lines.append("- Weakest topics: " + ", ".join(f"{taxonomy.label(int(c))} (F1 {row.f1:.2f})"
                                                  for c, row in weakest.iterrows()))
    unseen = [c for c in taxonomy.TOPICS if c not in set(classes)]
    if unseen:
        lines.append("- Topics the model never saw and can never predict (documents about them get another topic, "
                     "often with high confidence): " + ", ".join(taxonomy.label(c) for c in unseen))
    lines.append(f"- Trained on {container['data']['name']} only: texts of another kind (e.g. news instead of bill "
                 "titles) lose accuracy; measure it with `policy-topics evaluate data=OTHER model_ref=...`.")
    if report.cv is None:
        lines.append("- One test split: scores vary from split to split; `evaluation.cv_folds=5` shows by how much.")
    return lines
