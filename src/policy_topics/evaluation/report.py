"""Evaluation as people read it: Markdown tables and reports, the per-topic n-gram table and the
confusion-matrix plot. matplotlib is imported only when something is plotted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policy_topics import taxonomy
from policy_topics.evaluation.metrics import SplitEvaluation


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed), imported only when plotting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def markdown_table(frame: pd.DataFrame, floats: str = "{:.3f}") -> list[str]:
    """A DataFrame as Markdown table lines (floats formatted, numbers right-aligned)."""
    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return "-" if np.isnan(value) else floats.format(value)
        return str(value)

    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return lines


def plot_confusion(confusion: pd.DataFrame, path: Path, title: str) -> None:
    """A row-normalised confusion matrix with counts in the cells and topic names on the axes."""
    plt = pyplot()
    counts = confusion.to_numpy()
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    n = len(confusion)
    size = max(6.0, 0.45 * n + 3)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), confusion.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), confusion.index, fontsize=8)
    ax.set_xlabel("predicted topic")
    ax.set_ylabel("true topic")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of the true topic's documents")
    # The layout before the counts: they sit inside the axes, so they do not move its margins, and the
    # layout's trial drawing skips them (the same image, 14% faster with 21 topics and every cell filled).
    fig.tight_layout()
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if share[i, j] > 0.5 else "black")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ngram_table(ngrams: dict[int, list[tuple[str, float]]]) -> pd.DataFrame:
    """Long table of the top-weighted n-grams: code, topic, rank, feature, weight."""
    rows = [
        {"code": code, "topic": taxonomy.topic_name(code), "rank": rank, "ngram": name, "weight": weight}
        for code, items in ngrams.items()
        for rank, (name, weight) in enumerate(items, start=1)
    ]
    return pd.DataFrame(rows)


def markdown_report(title: str, evaluations: list[SplitEvaluation], ngrams: pd.DataFrame,
                    cleaning: str, agreement: Sequence[str] = ()) -> str:
    """A readable report of the run: data, headline metrics, agreement with the given codes (its section's
    lines, see :meth:`policy_topics.evaluation.agreement.SplitAgreement.markdown`), per-topic table, top
    n-grams."""
    lines = [f"# {title}", "", f"Data: {cleaning}", "", "| split | docs | accuracy | macro-F1 | weighted-F1 |",
             "|---|---:|---:|---:|---:|"]
    for ev in evaluations:
        m = ev.metrics
        lines.append(f"| {ev.split} | {int(m['n_docs'])} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | "
                     f"{m['weighted_f1']:.3f} |")
    if agreement:
        lines += ["", "## Agreement with the given codes", "", *agreement]
    test = evaluations[-1]
    lines += ["", f"## Per topic ({test.split})", "", "| code | topic | precision | recall | F1 | support |",
              "|---:|---|---:|---:|---:|---:|"]
    for code, row in test.per_topic.iterrows():
        lines.append(f"| {code} | {row.topic} | {row.precision:.3f} | {row.recall:.3f} | {row.f1:.3f} | "
                     f"{int(row.support)} |")
    lines += ["", "## Top-weighted n-grams", ""]
    for (code, topic), group in ngrams.groupby(["code", "topic"], sort=True):
        lines.append(f"- **{code} {topic}**: " + ", ".join(group["ngram"].head(10)))
    return "\n".join(lines) + "\n"
