"""Held-out evaluation: headline metrics, the per-topic table and confusion matrix, and the predictions
kept for coverage, calibration and error analysis (see ``policy_topics.jobs.analysis``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.pipeline import Pipeline

from policy_topics import taxonomy


@dataclass
class SplitEvaluation:
    """Metrics of one split; ``per_topic`` and ``confusion`` are indexed by topic code.

    The predictions stay attached (texts, true codes, class probabilities over ``classes``) for the
    coverage, calibration and error analyses.
    """

    split: str
    metrics: dict[str, float]
    per_topic: pd.DataFrame
    confusion: pd.DataFrame
    texts: list[str]
    y_true: np.ndarray
    proba: np.ndarray
    classes: np.ndarray

    @property
    def y_pred(self) -> np.ndarray:
        return self.classes[np.argmax(self.proba, axis=1)]

    @property
    def confidence(self) -> np.ndarray:
        """The probability of the predicted topic."""
        return self.proba.max(axis=1)

    def subset(self, mask: np.ndarray, split: str) -> SplitEvaluation:
        """The same predictions scored on the rows where ``mask`` is true."""
        return score(self.y_true[mask], self.proba[mask], self.classes, split,
                     [t for t, keep in zip(self.texts, mask, strict=True) if keep])


def unseen_rows(ev: SplitEvaluation, fitted_on: pd.Series) -> SplitEvaluation | None:
    """``ev`` scored on the rows whose text is none of ``fitted_on`` (the texts the model was fit on), as
    ``<split>_unseen``; None when every row's text was among them."""
    mask = ~pd.Series(ev.texts).isin(set(fitted_on)).to_numpy()
    return ev.subset(mask, f"{ev.split}_unseen") if mask.any() else None


def evaluate_split(pipeline: Pipeline, frame: pd.DataFrame, split: str) -> SplitEvaluation:
    """Score ``pipeline`` on a split with columns ``text`` and ``label``."""
    texts = frame["text"].tolist()
    return score(frame["label"].to_numpy(), pipeline.predict_proba(texts), pipeline.classes_, split, texts)


def score(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, split: str,
          texts: list[str]) -> SplitEvaluation:
    """Metrics of class probabilities against true codes; codes the model never saw count as errors
    and get a row (F1 0) in the per-topic table and the confusion matrix."""
    classes = np.asarray(classes)
    y_pred = classes[np.argmax(proba, axis=1)]
    codes = sorted(set(classes.tolist()) | set(y_true.tolist()))
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true), zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "n_docs": float(len(y_true)),
    }
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=codes, zero_division=0
    )
    per_topic = pd.DataFrame(
        {"topic": [taxonomy.topic_name(c) for c in codes], "precision": precision, "recall": recall,
         "f1": f1, "support": support},
        index=pd.Index(codes, name="code"),
    )
    matrix = confusion_matrix(y_true, y_pred, labels=codes)
    names = [taxonomy.label(c) for c in codes]
    confusion = pd.DataFrame(matrix, index=pd.Index(names, name="true topic"),
                             columns=pd.Index(names, name="predicted topic"))
    return SplitEvaluation(split, metrics, per_topic, confusion, list(texts), np.asarray(y_true), proba, classes)
