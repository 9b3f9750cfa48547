"""Small corpora: a held-out split too small to measure anything, and what helps a weak model.

The rule: a validation or test split that would hold fewer than ``evaluation.small_corpus.min_per_topic``
documents per topic on average (3 by default) measures nothing. With one or two documents of a topic,
its F1 is 0, 0.5 or 1 by chance, and one document more or less right moves macro-F1 by several points.
Such a run says so, and (unless the command line chose the split or the folds itself) evaluates by
stratified k-fold cross-validation on all rows instead, k = the smaller of 5 and the smallest topic's
documents; the logged model is then fit on all rows, as in any cross-validated run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

# Command-line keys that choose the held-out evaluation: given any of them, the split is the user's.
_SPLIT_KEYS = ("prep.test_size", "prep.val_size", "evaluation.cv_folds")
_MAX_FOLDS = 5
# What measurably helped a 231-document corpus (the demo corpus's first 11 documents per topic; 5-fold
# macro-F1 0.281 +- 0.076): pooling the US bill titles at weight 0.3 (0.646 +- 0.053) and MiniLM sentence
# embeddings (0.502 +- 0.067), on a 2-core VM, 2026-12-01.
WEAK_MACRO_F1 = 0.6


@dataclass(frozen=True)
class SmallCorpus:
    """What the check found: documents per topic in each held-out split, and the folds to use instead."""

    per_topic: dict[str, float]
    folds: int
    switched: bool
    n_docs: int

    def message(self) -> str:
        sizes = " and ".join(f"{name} {value:.1f}" for name, value in self.per_topic.items())
        head = (f"small corpus: the held-out splits would hold {sizes} documents per topic, too few to measure "
                "anything")
        if self.switched:
            return (f"{head}; evaluating by stratified {self.folds}-fold cross-validation on all {self.n_docs:,} "
                    "documents instead, and fitting the logged model on all of them (give prep.test_size or "
                    "evaluation.cv_folds to choose yourself)")
        return f"{head}; read its scores as rough (evaluation.cv_folds=5 gives intervals)"


def explicit_keys(overrides: Sequence[str]) -> set[str]:
    """The config keys that Hydra command-line overrides set (``+key=...`` and ``key=...``)."""
    return {o.lstrip("+~").split("=", 1)[0] for o in overrides if "=" in o}


def command_line_overrides() -> list[str]:
    """The overrides of the running Hydra job (none outside one)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def check(splits: Mapping[str, pd.DataFrame], settings: Mapping[str, Any], cv_folds: int,
          overrides: Sequence[str]) -> SmallCorpus | None:
    """None when every held-out split is large enough (or cross-validation is already on)."""
    if cv_folds:
        return None
    minimum = float(settings.get("min_per_topic", 3))
    n_topics = max(1, splits["train"]["label"].nunique())
    per_topic = {name: len(splits[name]) / n_topics for name in ("validation", "test") if len(splits[name])}
    if not per_topic or min(per_topic.values()) >= minimum:
        return None
    rows = pd.concat(list(splits.values()))
    smallest = int(rows["label"].value_counts().min())
    folds = min(_MAX_FOLDS, smallest)
    switched = (bool(settings.get("switch_to_cv", True)) and folds >= 2
                and not explicit_keys(overrides) & set(_SPLIT_KEYS))
    return SmallCorpus(per_topic, folds, switched, len(rows))


def hints(container: Mapping[str, Any], macro_f1: float | None, small: bool) -> list[str]:
    """What to try when the corpus is small or the model weak: the exact overrides."""
    if not small and (macro_f1 is None or macro_f1 >= WEAK_MACRO_F1):
        return []
    lines = []
    english = ((container["data"].get("language") or {}).get("code") or "en") == "en"
    if not container.get("pool") and english and container["data"]["name"] not in ("uscongress", "nytimes"):
        lines.append("pool a coded reference corpus in the same language, e.g. the US bill titles: "
                     "+data@pool.ref=uscongress +pool.ref.weight=0.3")
    features = container["features"]
    if not (features.get("embeddings") or {}).get("enabled"):
        lines.append("add sentence embeddings (the embeddings extra): features=word_char_minilm")
    if not lines:
        return []
    why = "small corpus" if small else f"macro-F1 {macro_f1:.2f}"
    return [f"  to do better ({why}): " + lines[0], *(f"                 or {line}" for line in lines[1:])]
