"""Stratified k-fold cross-validation with intervals, for figures that can be defended in review.

``evaluation.cv_folds=k`` (k >= 2) replaces the train/validation/test evaluation: every prepared row is
held out exactly once, each fold's scores are logged as stepped MLflow metrics (step = fold), and each
headline metric gets two 95% intervals from the k fold scores (t distribution, k-1 degrees of freedom):

* ``ci95``: confidence interval of the mean, mean +- t * s / sqrt(k). Folds share training rows, so
  their scores are not independent and this interval is optimistic (Bengio & Grandvalet, 2004).
* ``pi95``: prediction interval for the score of one more fold, mean +- t * s * sqrt(1 + 1/k): the
  spread a user should expect from one train/test split of this size.

The final model is then fit on all rows (and logged), so its own scores are the out-of-fold ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from policy_topics import taxonomy
from policy_topics.evaluation.metrics import SplitEvaluation, score

HEADLINE = ("accuracy", "macro_f1", "weighted_f1")
LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1"}


@dataclass(frozen=True)
class Interval:
    """Mean, sample standard deviation and the two 95% intervals of k fold scores."""

    n: int
    mean: float
    std: float
    ci95_low: float
    ci95_high: float
    pi95_low: float
    pi95_high: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": float(v) for k, v in self.__dict__.items() if k != "n"}


def interval(values: np.ndarray | list[float], bounds: tuple[float, float] | None = (0.0, 1.0)) -> Interval:
    """Both 95% intervals of ``values`` (see the module docstring), clipped to ``bounds`` (scores)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        raise ValueError("an interval needs at least two values")
    mean, std = float(values.mean()), float(values.std(ddof=1))
    quantile = float(t.ppf(0.975, n - 1))
    ci, pi = quantile * std / np.sqrt(n), quantile * std * np.sqrt(1 + 1 / n)
    low, high = bounds if bounds else (-np.inf, np.inf)
    return Interval(n, mean, std, max(low, mean - ci), min(high, mean + ci), max(low, mean - pi), min(high, mean + pi))


def fold_indices(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, shuffled (seeded) folds: (train rows, held-out rows) per fold."""
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


@dataclass
class CrossValidation:
    """Fold scores, per-topic fold F1s and the pooled out-of-fold predictions of one CV."""

    k: int
    seed: int
    folds: pd.DataFrame  # fold, n_train, n_test, accuracy, macro_f1, weighted_f1
    topic_f1: pd.DataFrame  # rows: folds, columns: topic codes
    oof: SplitEvaluation
    twin_proba: np.ndarray | None  # out-of-fold probabilities of the calibration twin, when compared

    def intervals(self) -> dict[str, Interval]:
        return {name: interval(self.folds[name]) for name in HEADLINE}

    def summary_table(self) -> pd.DataFrame:
        """One row per headline metric: mean, std, the two intervals and the fold values."""
        rows = []
        for name, iv in self.intervals().items():
            rows.append({"metric": name, "mean": iv.mean, "std": iv.std, "ci95_low": iv.ci95_low,
                         "ci95_high": iv.ci95_high, "pi95_low": iv.pi95_low, "pi95_high": iv.pi95_high,
                         "folds": " ".join(f"{v:.4f}" for v in self.folds[name])})
        return pd.DataFrame(rows)

    def per_topic(self) -> pd.DataFrame:
        """Per-topic F1 over the folds (mean, std, intervals), with the pooled out-of-fold F1 and support."""
        rows = []
        for code in self.topic_f1.columns:
            iv = interval(self.topic_f1[code])
            rows.append({"code": int(code), "topic": taxonomy.topic_name(int(code)),
                         "support": int(self.oof.per_topic.loc[code, "support"]),
                         "f1_out_of_fold": float(self.oof.per_topic.loc[code, "f1"]), **iv.as_dict("f1_")})
        return pd.DataFrame(rows)

    def metrics(self) -> dict[str, float]:
        """Summary metrics for MLflow: cv_<metric>_{mean,std,ci95_low,ci95_high,pi95_low,pi95_high}."""
        out = {"cv_folds": float(self.k)}
        for name, iv in self.intervals().items():
            out.update(iv.as_dict(f"cv_{name}_"))
        return out

    def terminal_lines(self) -> list[str]:
        lines = [f"  {self.k}-fold cross-validation (seed {self.seed}, {int(self.folds['n_test'].sum()):,} docs)",
                 f"  {'':<12} {'mean':>6} {'std':>6}   {'95% CI of the mean':<20} {'95% PI of one fold':<20} folds"]
        for name, iv in self.intervals().items():
            ci, pi = f"[{iv.ci95_low:.3f}, {iv.ci95_high:.3f}]", f"[{iv.pi95_low:.3f}, {iv.pi95_high:.3f}]"
            folds = " ".join(f"{v:.3f}" for v in self.folds[name])
            lines.append(f"  {LABELS[name]:<12} {iv.mean:6.3f} {iv.std:6.3f}   {ci:<20} {pi:<20} {folds}")
        lines.append("  (CI: where the mean lies, optimistic as folds share documents; PI: where the score of one "
                     "more split of this size would lie)")
        return lines


FitManyFn = Callable[[list[pd.DataFrame], bool | None], list[Pipeline]]


def cross_validate(frame: pd.DataFrame, k: int, seed: int, fit_many: FitManyFn, stages: Any,
                   compare_calibration: bool, pooled: str = "") -> CrossValidation:
    """Fit on k-1 folds, score the held-out fold, k times; ``fit_many(frames, calibrate)`` fits one model
    per frame, possibly at once (``calibrate=None``: as configured; True/False: the calibration twin).
    ``pooled`` says what joins every fit besides the folds' rows, for the stage line."""
    from policy_topics.models.pipeline import is_calibrated, probabilities

    labels = frame["label"].to_numpy()
    classes = np.unique(labels)
    folds = fold_indices(labels, k, seed)
    trains = [frame.iloc[train_rows] for train_rows, _ in folds]
    with stages.stage(f"fit {k} folds") as note:
        pipelines = fit_many(trains, None)
        twins = fit_many(trains, not is_calibrated(pipelines[0])) if compare_calibration else None
        note["detail"] = f"{len(trains[0]):,} docs{pooled} each" + (", and their calibration twins" if twins else "")
    proba = np.zeros((len(frame), len(classes)))
    twin = np.zeros_like(proba) if twins else None
    rows, topic_rows = [], []
    for number, (pipeline, (train_rows, test_rows)) in enumerate(zip(pipelines, folds, strict=True), start=1):
        with stages.stage(f"score fold {number}/{k}") as note:
            if not np.array_equal(pipeline.classes_, classes):
                raise RuntimeError("a cross-validation fold lacks a topic; folds are stratified, so this is a bug")
            texts = frame["text"].iloc[test_rows].tolist()
            proba[test_rows] = pipeline.predict_proba(texts)
            fold = score(labels[test_rows], proba[test_rows], classes, f"fold {number}", texts)
            if twin is not None and twins is not None:
                twin[test_rows] = probabilities(twins[number - 1], texts)
            rows.append({"fold": number, "n_train": len(train_rows), "n_test": len(test_rows),
                         **{name: fold.metrics[name] for name in HEADLINE}})
            topic_rows.append(fold.per_topic["f1"].rename(number))
            note["detail"] = f"macro-F1 {fold.metrics['macro_f1']:.3f}"
    oof = score(labels, proba, classes, "oof", frame["text"].tolist())
    return CrossValidation(k, seed, pd.DataFrame(rows), pd.DataFrame(topic_rows), oof, twin)


def log_fold_metrics(cv: CrossValidation) -> None:
    """Per-fold scores as stepped metrics ``cv_fold_<metric>`` (step = fold number): one run per
    configuration keeps the runs table and sweeps comparable, and the run page charts the folds."""
    import mlflow

    for row in cv.folds.itertuples(index=False):
        mlflow.log_metrics({f"cv_fold_{name}": float(getattr(row, name)) for name in HEADLINE}, step=int(row.fold))
