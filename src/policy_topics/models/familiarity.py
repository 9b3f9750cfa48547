"""Is a batch of texts like the training data? The share of its words the model has never seen, and its
mean top probability, against the same figures on held-out texts of the training corpus.

The auto-coding threshold promises its accuracy on texts like those it was chosen on. A corpus of
another kind (news for a model of bill titles, tweets for a model of news) has many words outside the
vocabulary and lower confidence, and the promise does not hold: measured with the US bill-title model,
5% unknown words and a mean top probability of 0.72 on its own unseen test split, 38% and 0.39 on New York
Times headlines, where its threshold coded at far below its validation accuracy.

The rule (both signals come from the training run, stored with the model): a batch of at least
``MIN_DOCS`` texts is unlike the training data when its share of unknown words exceeds the reference by
more than ``WORD_GAP``, or its mean top probability falls below the reference by more than ``CONFIDENCE_GAP``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_DOCS = 20
WORD_GAP = 0.10
CONFIDENCE_GAP = 0.15


def word_block(features: Any) -> Any | None:
    """The word TF-IDF vectorizer of a feature block (None for a hashing model, which has no vocabulary)."""
    blocks = dict(getattr(features, "transformer_list", [("word", features)]))
    block = blocks.get("word")
    return block if hasattr(block, "vocabulary_") else None


def unknown_words(block: Any, texts: Sequence[str], vocabulary: Any = None) -> float:
    """The share of the texts' words (unigrams, as the vectorizer reads them) not in the vocabulary."""
    analyze = block.build_analyzer()
    known = block.vocabulary_ if vocabulary is None else vocabulary
    seen = missing = 0
    for text in texts:
        for gram in analyze(text):
            if " " not in gram:
                seen += 1
                missing += gram not in known
    return missing / seen if seen else 0.0


@dataclass(frozen=True)
class Familiarity:
    """The figures of a batch, or of the held-out reference a model carries."""

    unknown_words: float
    confidence: float
    n_docs: int

    def as_dict(self) -> dict[str, float | int]:
        return {"unknown_words": round(self.unknown_words, 4), "confidence": round(self.confidence, 4),
                "n_docs": self.n_docs}


def reference(block: Any, train_texts: Sequence[str], held_out: Sequence[str], confidence: np.ndarray,
              chosen_on: str) -> dict[str, Any]:
    """The reference of a training run: unknown words of held-out texts against a vocabulary built from the
    other training texts alone (the logged model's vocabulary has seen them), and the mean top probability
    of the held-out predictions."""
    from sklearn.base import clone

    vocabulary = clone(block).fit(list(train_texts)).vocabulary_
    return {**Familiarity(unknown_words(block, held_out, vocabulary), float(np.mean(confidence)),
                          len(held_out)).as_dict(), "chosen_on": chosen_on}


class Tally:
    """Running figures of the texts a command codes, batch by batch. The mean top probability counts every
    text; the unknown words (a second tokenisation of each text) only the first ``WORD_SAMPLE``, which is
    plenty for a share and keeps the cost off long batch runs."""

    WORD_SAMPLE = 5_000

    def __init__(self, block: Any) -> None:
        self.analyze, self.known = block.build_analyzer(), block.vocabulary_
        self.seen = self.missing = self.docs = self.read = 0
        self.confidence = 0.0

    def add(self, texts: Sequence[str], top_probabilities: Sequence[float | None],
            clean: Callable[[Sequence[str]], list[str]]) -> None:
        """``texts`` as given, cleaned with ``clean`` (the predictor's) where their words are counted."""
        coded = [(t, p) for t, p in zip(texts, top_probabilities, strict=True) if p is not None]  # (not empty)
        self.docs += len(coded)
        self.confidence += sum(float(p) for _, p in coded)
        sample = coded[:max(0, self.WORD_SAMPLE - self.read)]
        self.read += len(sample)
        for text in clean([t for t, _ in sample]):
            grams = [g for g in self.analyze(text) if " " not in g]
            self.seen += len(grams)
            self.missing += sum(g not in self.known for g in grams)

    def figures(self) -> Familiarity:
        return Familiarity(self.missing / self.seen if self.seen else 0.0,
                           self.confidence / self.docs if self.docs else 0.0, self.docs)


def warning(batch: Familiarity, ref: dict[str, Any] | None) -> str | None:
    """One line when ``batch`` is unlike the training data (see the module's rule), else None."""
    if not ref or batch.n_docs < MIN_DOCS:
        return None
    words = batch.unknown_words - float(ref["unknown_words"]) > WORD_GAP
    sure = float(ref["confidence"]) - batch.confidence > CONFIDENCE_GAP
    if not (words or sure):
        return None
    return (f"these {batch.n_docs:,} texts are unlike the training data: {batch.unknown_words:.0%} of their words "
            f"are unknown to the model (against {float(ref['unknown_words']):.0%} for held-out training texts) and "
            f"its mean top probability is {batch.confidence:.2f} (against {float(ref['confidence']):.2f}); the "
            "accuracy measured at training does not hold for them: code a random sample of this corpus by hand "
            "and measure it there before trusting 'coded'")
