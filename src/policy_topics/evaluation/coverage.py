"""Coverage vs accuracy: how many documents can be auto-coded at a given confidence, and how well.

The classic CAP practice: the model codes the documents it is sure about and human coders take the
rest. A document is auto-coded when the probability of its predicted topic is at least the threshold
(the same rule as the predictor's ``coded`` status), so coverage can only fall as the threshold rises.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


def thresholds(step: float) -> np.ndarray:
    """0, step, 2*step, ... and 1."""
    return np.unique(np.append(np.round(np.arange(0.0, 1.0, step), 6), 1.0))


def coverage_table(confidence: np.ndarray, correct: np.ndarray, grid: np.ndarray) -> pd.DataFrame:
    """Per threshold: share of documents auto-coded (confidence >= threshold), how many, and the
    accuracy on them (NaN when none is coded)."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    coded = confidence[None, :] >= np.asarray(grid, dtype=float)[:, None]
    n_coded = coded.sum(axis=1)
    hits = (coded & correct[None, :]).sum(axis=1)
    accuracy = np.divide(hits, n_coded, out=np.full(len(grid), np.nan), where=n_coded > 0)
    return pd.DataFrame({"threshold": grid, "coverage": n_coded / max(len(confidence), 1),
                         "n_coded": n_coded, "accuracy": accuracy})


@dataclass(frozen=True)
class OperatingPoint:
    """The smallest threshold whose auto-coded documents reach the target accuracy (None: not reachable)."""

    target: float
    threshold: float | None
    coverage: float
    n_coded: int
    accuracy: float | None

    def describe(self) -> str:
        if self.threshold is None:
            return f"{self.target:.0%} accuracy is not reachable at any threshold"
        return (f"{self.target:.0%} accuracy at threshold {self.threshold:.2f}: {self.coverage:.1%} of documents "
                f"({self.n_coded:,}) auto-coded (accuracy {self.accuracy:.3f}), {1 - self.coverage:.1%} left to "
                "human coders")


def operating_point(table: pd.DataFrame, target: float) -> OperatingPoint:
    """The first threshold (lowest, so most coverage) where accuracy on the coded documents >= target."""
    reached = table[(table["accuracy"] >= target) & (table["n_coded"] > 0)]
    if reached.empty:
        return OperatingPoint(target, None, 0.0, 0, None)
    row = reached.iloc[0]
    return OperatingPoint(target, float(row.threshold), float(row.coverage), int(row.n_coded), float(row.accuracy))


def plot_coverage(curves: dict[str, pd.DataFrame], point: OperatingPoint, path: Path, title: str) -> None:
    """Coverage and accuracy against the threshold (one pair of lines per curve), with the target."""
    from policy_topics.evaluation.report import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for (name, table), color in zip(curves.items(), ("tab:blue", "tab:purple", "tab:green"), strict=False):
        suffix = f" ({name})" if len(curves) > 1 else ""
        ax.plot(table["threshold"], table["accuracy"], color=color, label=f"accuracy of auto-coded{suffix}")
        ax.plot(table["threshold"], table["coverage"], color=color, linestyle="--",
                label=f"share auto-coded{suffix}")
    ax.axhline(point.target, color="gray", linewidth=0.8, linestyle=":", label=f"target accuracy {point.target:.2f}")
    if point.threshold is not None:
        ax.axvline(point.threshold, color="tab:red", linewidth=0.8)
        ax.annotate(f"threshold {point.threshold:.2f}\n{point.coverage:.0%} auto-coded",
                    (point.threshold, point.coverage), xytext=(8, -30), textcoords="offset points", fontsize=9,
                    color="tab:red")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence threshold (probability of the predicted topic)")
    ax.set_ylabel("share / accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def auto_coding_threshold(confidence: np.ndarray, correct: np.ndarray, grid: np.ndarray, target: float,
                          chosen_on: str) -> dict[str, float | int | str | None]:
    """The threshold a model carries for auto-coding: the operating point for ``target`` accuracy on
    predictions it was not fit on (validation, or out-of-fold; never test), with its evidence."""
    point = operating_point(coverage_table(confidence, correct, grid), target)
    return {"threshold": point.threshold, "target_accuracy": target, "chosen_on": chosen_on,
            "n_docs": len(confidence), "accuracy": point.accuracy, "coverage": point.coverage,
            "n_coded": point.n_coded}


def at_threshold(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> tuple[float, float | None]:
    """(coverage, accuracy on the coded documents) of one threshold; accuracy None when nothing is coded."""
    coded = np.asarray(confidence, dtype=float) >= threshold
    n = int(coded.sum())
    return n / max(len(coded), 1), (float(np.asarray(correct, dtype=bool)[coded].mean()) if n else None)
