"""Learning curve: macro-F1 against the number of coded training documents.

Tells a research team whether coding more documents would pay: if the curve still climbs at 100%,
more coding helps; if it is flat, it will not. Each point fits on a stratified subsample of a training
part and scores a held-out part: the validation split (several seeds) or each CV fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


def stratified_subsample(frame: pd.DataFrame, fraction: float, seed: int, minimum: int = 2) -> pd.DataFrame:
    """``fraction`` of each topic's rows (at least ``minimum``, so calibration folds still see every topic)."""
    if fraction >= 1.0:
        return frame
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for _, rows in frame.groupby("label", sort=True).indices.items():
        take = min(len(rows), max(minimum, round(fraction * len(rows))))
        chosen.append(rng.choice(rows, size=take, replace=False))
    return frame.iloc[np.sort(np.concatenate(chosen))]


@dataclass(frozen=True)
class Repetition:
    """One training part and the part it is scored on (a seed of the validation split, or a CV fold)."""

    name: str
    train: pd.DataFrame
    held_out: pd.DataFrame
    seed: int
    full_score: float | None = None  # macro-F1 of the fit on the whole training part, if already known


def learning_curve(repetitions: list[Repetition], fractions: list[float],
                   fit_score: Callable[[pd.DataFrame, pd.DataFrame], float]) -> pd.DataFrame:
    """One row per (fraction, repetition): training documents and held-out macro-F1."""
    rows = []
    for fraction in fractions:
        whole_parts: set[int] = set()
        for rep in repetitions:
            if fraction >= 1.0:  # the whole training part: the seed changes nothing, one fit per part
                if id(rep.train) in whole_parts:
                    continue
                whole_parts.add(id(rep.train))
            sample = stratified_subsample(rep.train, fraction, rep.seed)
            known = rep.full_score if fraction >= 1.0 else None
            f1 = known if known is not None else fit_score(sample, rep.held_out)
            rows.append({"fraction": fraction, "repetition": rep.name, "seed": rep.seed, "n_train": len(sample),
                         "macro_f1": f1})
    return pd.DataFrame(rows)


def summarise(curve: pd.DataFrame) -> pd.DataFrame:
    """Per fraction: mean training documents, mean, std, min and max macro-F1 over repetitions."""
    grouped = curve.groupby("fraction")
    return pd.DataFrame({
        "n_train": grouped["n_train"].mean().round().astype(int),
        "macro_f1_mean": grouped["macro_f1"].mean(),
        "macro_f1_std": grouped["macro_f1"].std(ddof=1).fillna(0.0),
        "macro_f1_min": grouped["macro_f1"].min(),
        "macro_f1_max": grouped["macro_f1"].max(),
        "repetitions": grouped.size(),
    }).reset_index()


def plot_learning_curve(curve: pd.DataFrame, path: Path, title: str) -> None:
    """Mean macro-F1 with a +-1 std band and every repetition as a dot."""
    from policy_topics.evaluation.report import pyplot

    plt = pyplot()
    table = summarise(curve)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(curve["n_train"], curve["macro_f1"], s=12, color="tab:blue", alpha=0.4, label="one fit")
    ax.plot(table["n_train"], table["macro_f1_mean"], marker="o", color="tab:blue", label="mean")
    ax.fill_between(table["n_train"], table["macro_f1_mean"] - table["macro_f1_std"],
                    table["macro_f1_mean"] + table["macro_f1_std"], color="tab:blue", alpha=0.15, label="+-1 std")
    ax.set_xlabel("training documents")
    ax.set_ylabel("held-out macro-F1")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
