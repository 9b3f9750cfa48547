"""Are the probabilities honest? Reliability diagram, expected calibration error and Brier score.

Coverage thresholds only mean something if a 0.9 means right nine times in ten, so every run
reports how far the top-topic probability is from the observed accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def reliability_table(confidence: np.ndarray, correct: np.ndarray, bins: int) -> pd.DataFrame:
    """Equal-width confidence bins over [0, 1] (the last one includes 1): documents, mean confidence
    and accuracy per bin (NaN for empty bins)."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    edges = np.linspace(0.0, 1.0, bins + 1)
    return pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "n_docs": count,
                         "mean_confidence": mean_conf, "accuracy": accuracy})


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """Sum over bins of (share of documents) * |accuracy - mean confidence|, on the top topic; in [0, 1]."""
    table = reliability_table(confidence, correct, bins)
    used = table["n_docs"] > 0
    gaps = (table.loc[used, "accuracy"] - table.loc[used, "mean_confidence"]).abs()
    return float((table.loc[used, "n_docs"] * gaps).sum() / max(len(np.asarray(confidence)), 1))


def brier_score(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Multiclass Brier score: mean over documents of sum_k (p_k - [k is the true topic])^2, in [0, 2].

    A true topic the model has no column for (never seen in training) adds 1: the model gave it 0.
    """
    onehot = np.asarray(y_true)[:, None] == np.asarray(classes)[None, :]
    per_doc = ((proba - onehot) ** 2).sum(axis=1) + ~onehot.any(axis=1)
    return float(per_doc.mean())


def calibration_metrics(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, bins: int) -> dict[str, float]:
    """ECE and Brier score of class probabilities."""
    classes = np.asarray(classes)
    correct = classes[np.argmax(proba, axis=1)] == np.asarray(y_true)
    return {"ece": expected_calibration_error(proba.max(axis=1), correct, bins),
            "brier": brier_score(y_true, proba, classes)}


def plot_reliability(tables: dict[str, pd.DataFrame], metrics: dict[str, dict[str, float]], path: Path,
                     title: str) -> None:
    """Accuracy against mean confidence per bin (one line per variant), with the share of documents
    per bin underneath."""
    from policy_topics.evaluation.report import pyplot

    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1, label="perfectly calibrated")
    width = 1.0 / max(len(next(iter(tables.values()))), 1) / max(len(tables), 1)
    for offset, ((name, table), color) in enumerate(zip(tables.items(), ("tab:blue", "tab:orange"), strict=False)):
        used = table[table["n_docs"] > 0]
        m = metrics[name]
        top.plot(used["mean_confidence"], used["accuracy"], marker="o", color=color,
                 label=f"{name}: ECE {m['ece']:.3f}, Brier {m['brier']:.3f}")
        share = table["n_docs"] / max(table["n_docs"].sum(), 1)
        bottom.bar(table["bin_low"] + offset * width, share, width=width, align="edge", color=color, alpha=0.7)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_ylabel("accuracy")
    top.set_title(title)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("probability of the predicted topic (bin)")
    bottom.set_ylabel("share of docs")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
