"""What a run reports beyond its headline metrics, shared by ``train`` and ``evaluate``: coverage vs
accuracy, calibration (with an optional calibrated/uncalibrated comparison), error analysis, the
cross-validation tables and the learning curve, as MLflow artifacts, metrics and terminal lines.

Settings come from ``conf/evaluation`` and are checked before a run opens, so bad values leave no
half-logged run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policy_topics import taxonomy
from policy_topics.errors import ConfigError
from policy_topics.evaluation.coverage import OperatingPoint
from policy_topics.evaluation.crossval import CrossValidation
from policy_topics.evaluation.metrics import SplitEvaluation


@dataclass(frozen=True)
class EvaluationOptions:
    """``conf/evaluation``, checked."""

    cv_folds: int = 0
    target_accuracy: float = 0.9
    threshold_step: float = 0.01
    calibration_bins: int = 10
    compare_calibration: bool = False
    learning_curve: bool = False
    fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 1.0)
    seeds: int = 3
    errors_top: int = 50
    confused_pairs_top: int = 20
    little_support: int = 50

    @classmethod
    def from_config(cls, evaluation: Mapping[str, Any]) -> EvaluationOptions:
        """Read and check the settings; every problem is one line naming the key and the fix."""
        curve = evaluation.get("learning_curve") or {}

        def number(key: str, value: Any, kind: type) -> Any:
            try:
                if kind is int and float(value) != int(float(value)):
                    raise ValueError
                return kind(value)
            except (TypeError, ValueError):
                raise ConfigError(f"evaluation.{key} must be a{'n integer' if kind is int else ' number'}, "
                                  f"not {value!r}") from None

        options = cls(
            cv_folds=number("cv_folds", evaluation.get("cv_folds", 0), int),
            target_accuracy=number("target_accuracy", evaluation.get("target_accuracy", 0.9), float),
            threshold_step=number("threshold_step", evaluation.get("threshold_step", 0.01), float),
            calibration_bins=number("calibration_bins", evaluation.get("calibration_bins", 10), int),
            compare_calibration=bool(evaluation.get("compare_calibration", False)),
            learning_curve=bool(curve.get("enabled", False)),
            fractions=tuple(number("learning_curve.fractions", f, float)
                            for f in curve.get("fractions", cls.fractions)),
            seeds=number("learning_curve.seeds", curve.get("seeds", 3), int),
            errors_top=number("errors_top", evaluation.get("errors_top", 50), int),
            confused_pairs_top=number("confused_pairs_top", evaluation.get("confused_pairs_top", 20), int),
            little_support=number("little_support", evaluation.get("little_support", 50), int),
        )
        problems = [
            (options.cv_folds == 1 or options.cv_folds < 0,
             f"evaluation.cv_folds={options.cv_folds}: use 0 (train/validation/test) or a number of folds >= 2"),
            (not 0 < options.target_accuracy <= 1,
             f"evaluation.target_accuracy={options.target_accuracy} must be in (0, 1], e.g. 0.9"),
            (not 0 < options.threshold_step <= 0.5,
             f"evaluation.threshold_step={options.threshold_step} must be in (0, 0.5], e.g. 0.01"),
            (options.calibration_bins < 1, "evaluation.calibration_bins must be at least 1, e.g. 10"),
            (not options.fractions or not all(0 < f <= 1 for f in options.fractions),
             f"evaluation.learning_curve.fractions={list(options.fractions)} must be fractions in (0, 1]"),
            (options.seeds < 1, "evaluation.learning_curve.seeds must be at least 1"),
            (min(options.errors_top, options.confused_pairs_top, options.little_support) < 0,
             "evaluation.errors_top, confused_pairs_top and little_support must be >= 0"),
        ]
        for bad, message in problems:
            if bad:
                raise ConfigError(message)
        return options

    def check_folds(self, labels: pd.Series) -> None:
        """Every fold must hold every topic: the smallest topic needs at least ``cv_folds`` documents."""
        if not self.cv_folds:
            return
        counts = labels.value_counts()
        if counts.min() < self.cv_folds:
            code, smallest = int(counts.idxmin()), int(counts.min())
            raise ConfigError(
                f"evaluation.cv_folds={self.cv_folds} is more than the smallest topic has documents "
                f"({taxonomy.label(code)}: {smallest}); lower evaluation.cv_folds to at most {smallest}")

    @property
    def grid(self) -> np.ndarray:
        from policy_topics.evaluation.coverage import thresholds

        return thresholds(self.threshold_step)


@dataclass
class Analysis:
    """Coverage and calibration of one set of predictions (a split, out-of-fold, or a subset)."""

    label: str
    what: str
    coverage: pd.DataFrame
    point: OperatingPoint
    calibration: dict[str, float]
    comparison: dict[str, dict[str, float]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        out = {f"{self.label}_{k}": v for k, v in self.calibration.items()}
        out[f"{self.label}_coverage_at_target"] = self.point.coverage
        if self.point.threshold is not None:
            out[f"{self.label}_threshold_at_target"] = self.point.threshold
        for name, values in self.comparison.items():
            out.update({f"{self.label}_{k}_{name.split()[0]}": v for k, v in values.items()})
        return out

    def lines(self) -> list[str]:
        calibration = f"ECE {self.calibration['ece']:.3f}, Brier {self.calibration['brier']:.3f}"
        if self.comparison:
            calibration = "; ".join(f"{name}: ECE {m['ece']:.3f}, Brier {m['brier']:.3f}"
                                    for name, m in self.comparison.items())
        return [f"  auto-coding ({self.what}): {self.point.describe()}",
                f"  calibration ({self.what}): {calibration}"]


def analyse(ev: SplitEvaluation, options: EvaluationOptions, out: Path, label: str, what: str, title: str,
            comparison: dict[str, np.ndarray] | None = None, errors: bool = True) -> Analysis:
    """Coverage table and plot, reliability diagram, ECE and Brier, and (``errors``) the error tables
    of ``ev``, written under ``out``. ``comparison`` maps variant names (uncalibrated first) to
    probabilities of the same documents."""
    from policy_topics.evaluation.calibration import calibration_metrics, plot_reliability, reliability_table
    from policy_topics.evaluation.coverage import coverage_table, operating_point, plot_coverage
    from policy_topics.evaluation.error_analysis import confident_mistakes, confused_pairs

    for folder in ("coverage", "calibration", "errors"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    correct = ev.y_pred == ev.y_true
    table = coverage_table(ev.confidence, correct, options.grid)
    point = operating_point(table, options.target_accuracy)
    table.to_csv(out / "coverage" / f"coverage_{label}.csv", index=False)
    plot_coverage({label: table}, point, out / "coverage" / f"coverage_{label}.png", f"{title}: {what}")

    variants = comparison or {"model": ev.proba}
    tables, scores = {}, {}
    for name, proba in variants.items():
        right = ev.classes[np.argmax(proba, axis=1)] == ev.y_true
        tables[name] = reliability_table(proba.max(axis=1), right, options.calibration_bins)
        scores[name] = calibration_metrics(ev.y_true, proba, ev.classes, options.calibration_bins)
    pd.concat(tables, names=["variant", "bin"]).to_csv(out / "calibration" / f"reliability_{label}.csv")
    plot_reliability(tables, scores, out / "calibration" / f"reliability_{label}.png", f"{title}: {what}")
    own = calibration_metrics(ev.y_true, ev.proba, ev.classes, options.calibration_bins)
    (out / "calibration" / f"calibration_{label}.json").write_text(json.dumps(
        {"what": what, "bins": options.calibration_bins, **own, "comparison": scores if comparison else {}}, indent=2))
    if errors:
        confident_mistakes(ev, options.errors_top).to_csv(out / "errors" / f"confident_mistakes_{label}.csv",
                                                          index=False)
        confused_pairs(ev, options.confused_pairs_top).to_csv(out / "errors" / f"confused_pairs_{label}.csv",
                                                              index=False)
    return Analysis(label, what, table, point, own, scores if comparison else {})


def calibration_variants(main: np.ndarray, twin: np.ndarray, main_is_calibrated: bool,
                         method: str) -> dict[str, np.ndarray]:
    """Name the model's probabilities and its twin's: the uncalibrated one first."""
    calibrated, uncalibrated = (main, twin) if main_is_calibrated else (twin, main)
    return {"uncalibrated": uncalibrated, f"calibrated ({method})": calibrated}


@dataclass
class TrainingAnalysis:
    """Everything a training run reports beyond its split metrics."""

    analysis: Analysis
    cv: CrossValidation | None
    curve: pd.DataFrame | None
    metrics: dict[str, float]
    lines: list[str]


def analyse_training(container: Mapping[str, Any], splits: Mapping[str, pd.DataFrame],
                     evaluations: list[SplitEvaluation], cv: CrossValidation | None, pipeline: Any,
                     options: EvaluationOptions, stages: Any) -> TrainingAnalysis:
    """Analyse the last evaluation (test split, or out-of-fold when cross-validating), fit the
    calibration twin and the learning curve when asked, and log it all to the active MLflow run."""
    import mlflow

    from policy_topics.evaluation.crossval import log_fold_metrics
    from policy_topics.models.pipeline import is_calibrated

    ev = evaluations[-1]
    what = f"out-of-fold, {cv.k}-fold CV" if cv else f"{ev.split} split"
    title = f"{container['data']['name']} / {container['model']['name']}"
    comparison = None
    method = container["model"].get("calibration", {}).get("method", "sigmoid")
    if options.compare_calibration:
        twin = cv.twin_proba if cv else None
        if twin is None:
            with stages.stage("calibration twin") as note:
                twin = _twin_on_test(container, splits, ev, not is_calibrated(pipeline))
                note["detail"] = "uncalibrated twin" if is_calibrated(pipeline) else f"{method}-calibrated twin"
        comparison = calibration_variants(ev.proba, twin, is_calibrated(pipeline), method)
    curve = None
    if options.learning_curve:
        with stages.stage("learning curve") as note:
            curve = _learning_curve(container, splits, evaluations, cv, options)
            note["detail"] = f"{len(curve)} points, {curve['repetition'].nunique()} repetitions"
    with stages.stage("analyse predictions"), tempfile.TemporaryDirectory(prefix="policy-topics-analysis-") as tmp:
        out = Path(tmp)
        analysis = analyse(ev, options, out, ev.split, what, title, comparison)
        lines = []
        metrics = analysis.metrics()
        if cv:
            lines += cv.terminal_lines()
            metrics.update(cv.metrics())
            (out / "cv").mkdir()
            cv.folds.to_csv(out / "cv" / "folds.csv", index=False)
            cv.summary_table().to_csv(out / "cv" / "summary.csv", index=False)
            cv.per_topic().to_csv(out / "cv" / "per_topic_f1.csv", index=False)
            log_fold_metrics(cv)
        if curve is not None:
            from policy_topics.evaluation.learning_curve import plot_learning_curve, summarise

            (out / "learning_curve").mkdir()
            curve.to_csv(out / "learning_curve" / "points.csv", index=False)
            summarise(curve).to_csv(out / "learning_curve" / "learning_curve.csv", index=False)
            plot_learning_curve(curve, out / "learning_curve" / "learning_curve.png",
                                f"{title}: macro-F1 vs training documents")
            lines.append("  learning curve: " + ", ".join(
                f"{int(r.n_train):,} docs {r.macro_f1_mean:.3f}" for r in summarise(curve).itertuples()))
        lines += analysis.lines()
        mlflow.log_artifacts(str(out))
    return TrainingAnalysis(analysis, cv, curve, metrics, lines)


def final_training_rows(container: Mapping[str, Any], splits: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The rows the logged model was fit on in train/validation/test mode: with the refit, train and the
    validation rows of the topics train has (a dataset's own validation split may hold others)."""
    if container.get("refit", True) and len(splits["validation"]):
        validation = splits["validation"]
        validation = validation[validation["label"].isin(set(splits["train"]["label"]))]
        return pd.concat([splits["train"], validation], ignore_index=True)
    return splits["train"]


def _fit(container: Mapping[str, Any], frame: pd.DataFrame, calibrate: bool | None) -> Any:
    from policy_topics.jobs.fitting import fit_from_config

    return fit_from_config(container, frame, calibrate)


def _twin_on_test(container: Mapping[str, Any], splits: Mapping[str, pd.DataFrame], ev: SplitEvaluation,
                  calibrate: bool) -> np.ndarray:
    from policy_topics.models.pipeline import probabilities

    twin = _fit(container, final_training_rows(container, splits), calibrate)
    return probabilities(twin, ev.texts)


def _learning_curve(container: Mapping[str, Any], splits: Mapping[str, pd.DataFrame],
                    evaluations: list[SplitEvaluation], cv: CrossValidation | None,
                    options: EvaluationOptions) -> pd.DataFrame:
    """Subsamples of the training split scored on validation (one repetition per seed), or of each
    CV fold's training part scored on the held-out fold; fits at 100% are reused from the run."""
    from sklearn.metrics import f1_score

    from policy_topics.evaluation.crossval import fold_indices
    from policy_topics.evaluation.learning_curve import Repetition, learning_curve

    seed = int(container["seed"])
    if cv:
        frame = cv_frame(splits)
        folds = fold_indices(frame["label"].to_numpy(), cv.k, cv.seed)
        reps = [Repetition(f"fold {i}", frame.iloc[tr], frame.iloc[te], seed + i, float(cv.folds["macro_f1"][i - 1]))
                for i, (tr, te) in enumerate(folds, start=1)]
    else:
        held_out = "validation" if len(splits["validation"]) else "test"
        known = evaluations[0].metrics["macro_f1"] if held_out == "validation" else None
        reps = [Repetition(f"seed {seed + i}", splits["train"], splits[held_out], seed + i, known)
                for i in range(options.seeds)]

    def fit_score(train: pd.DataFrame, held: pd.DataFrame) -> float:
        pipeline = _fit(container, train, None)
        predicted = pipeline.predict(held["text"].tolist())
        return float(f1_score(held["label"], predicted, average="macro", labels=np.unique(held["label"]),
                              zero_division=0))

    return learning_curve(reps, sorted(set(options.fractions)), fit_score)


def cv_frame(splits: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """All prepared rows, in a fixed order (train, validation, test), for cross-validation."""
    return pd.concat([splits[name] for name in ("train", "validation", "test")], ignore_index=True)


def cross_validate_and_fit(container: Mapping[str, Any], splits: Mapping[str, pd.DataFrame],
                           options: EvaluationOptions, stages: Any) -> tuple[Any, list[SplitEvaluation],
                                                                             CrossValidation]:
    """k-fold CV on all prepared rows, then the final model fit on all of them."""
    from policy_topics.data.pooling import pooled_note
    from policy_topics.evaluation.crossval import cross_validate
    from policy_topics.jobs.fitting import fit_all

    frame = cv_frame(splits)
    def fit_many(frames: list[pd.DataFrame], calibrate: bool | None) -> list[Any]:
        return fit_all(container, frames, calibrate)

    pooled = pooled_note(container)
    cv = cross_validate(frame, options.cv_folds, int(container["seed"]), fit_many, stages,
                        options.compare_calibration, pooled)
    with stages.stage("fit on all rows") as note:
        pipeline = _fit(container, frame, None)
        note["detail"] = f"{len(frame):,} docs{pooled}, {len(pipeline.classes_)} topics"
    return pipeline, [cv.oof], cv
