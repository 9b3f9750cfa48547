"""Explanations in words: the words and phrases of a text that pushed a linear model towards its topic.

A feature's contribution to a topic's score is its value times the topic's weight for it. Word n-grams
are the text's own words and phrases. A character n-gram (``" ali"``, ``"far"``) means nothing to a
reader: its contribution is summed back into the words of the text it comes from (shared equally when
several words hold it). Sentence-embedding dimensions are summed into one item, "(sentence embedding)",
so that when the embeddings decided, the explanation says so instead of presenting words as the reason.
All items together add up to the score the features gave the topic (the intercept aside).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import sparse

from policy_topics.features.hashing import hashed_ngrams, hashing_blocks

EMBEDDING_ITEM = "(sentence embedding)"


def _char_preprocessor(features: Any) -> Callable[[str], str]:
    """The char block's own preprocessing (lowercasing, accent stripping), so words match its n-grams."""
    blocks = hashing_blocks(features)
    if blocks is not None:
        found = [hasher for name, hasher, _ in blocks if name == "char"]
    else:
        found = [step for name, step in getattr(features, "transformer_list", []) if name == "char"]
    return found[0].build_preprocessor() if found else str.lower


class Explainer:
    """Word-level explanations for one fitted feature block and the classifier's per-topic weights."""

    def __init__(self, features: Any, weights: np.ndarray) -> None:
        self.features = features
        self.weights = weights
        self.hashing = hashing_blocks(features) is not None
        self.names = None if self.hashing else np.asarray(features.get_feature_names_out(), dtype=object)
        self.preprocess = _char_preprocessor(features)

    def _names(self, columns: np.ndarray, text: str) -> list[str]:
        if self.names is not None:
            return [str(n) for n in self.names[columns]]
        named = hashed_ngrams(self.features, [text])  # a hashing model names its columns from the text
        return [named.get(int(c), "?") for c in columns]

    def items(self, row: sparse.csr_matrix, topic: int, text: str) -> list[dict[str, Any]]:
        """Every word, phrase and the embedding block with its contribution to ``topic`` (column index of
        the weights), strongest push first."""
        contributions = row.data * self.weights[topic, row.indices]
        words = list(dict.fromkeys(self.preprocess(text).split()))
        totals: dict[str, float] = defaultdict(float)
        kinds: dict[str, str] = {}
        embedded = 0.0
        for name, value in zip(self._names(row.indices, text), contributions.tolist(), strict=True):
            block, _, gram = name.rpartition("__")
            if block == "embeddings":
                embedded += value
            elif block == "char":
                owners = [w for w in words if gram in f" {w} "] or [gram.strip()]
                for word in owners:
                    totals[word] += value / len(owners)
                    kinds.setdefault(word, "word")
            else:
                totals[gram] += value
                kinds[gram] = "phrase" if " " in gram else "word"
        items = [{"ngram": term, "kind": kinds[term], "weight": float(weight)} for term, weight in totals.items()]
        if embedded:
            items.append({"ngram": EMBEDDING_ITEM, "kind": "embeddings", "weight": float(embedded)})
        items.sort(key=lambda item: -item["weight"])
        return items

    def explain(self, row: sparse.csr_matrix, topic: int, n: int, text: str) -> list[dict[str, Any]]:
        """The ``n`` items that pushed hardest towards ``topic``, each with its share of the positive push."""
        items = self.items(row, topic, text)
        push = sum(item["weight"] for item in items if item["weight"] > 0) or 1.0
        return [{**item, "weight": round(item["weight"], 6), "share": round(max(item["weight"], 0.0) / push, 4)}
                for item in items[:n]]
