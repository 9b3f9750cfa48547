"""The features block of a pipeline, from ``conf/features``: word TF-IDF, optionally char TF-IDF and
sentence embeddings side by side, or hashed n-grams (``features.kind: hashing``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.pipeline import FeatureUnion

from policy_topics.features.vectorizers import FastTfidfVectorizer

_VECTORIZER_KEYS = ("ngram_range", "min_df", "max_df", "max_features", "sublinear_tf", "lowercase",
                    "strip_accents", "analyzer", "stop_words", "token_pattern", "binary")


def _vectorizer(settings: Mapping[str, Any], analyzer: str) -> FastTfidfVectorizer:
    kwargs = {key: settings[key] for key in _VECTORIZER_KEYS if key in settings and key != "enabled"}
    kwargs["analyzer"] = kwargs.get("analyzer", analyzer)
    kwargs["ngram_range"] = tuple(kwargs.get("ngram_range", (1, 1)))
    kwargs["dtype"] = np.float32
    return FastTfidfVectorizer(**kwargs)


def build_features(features: Mapping[str, Any]) -> Any:
    """Word TF-IDF, or a feature union of the enabled blocks: word TF-IDF, char TF-IDF
    (``features.char.enabled``) and sentence embeddings (``features.embeddings.enabled``, the optional
    ``embeddings`` extra). A block's ``weight`` (default 1) multiplies its columns in the union. With
    ``features.kind: hashing``, the word and char blocks hashed (no vocabulary; see
    :mod:`policy_topics.features.hashing`)."""
    from policy_topics.features.hashing import build_hashing_features, is_hashing

    if is_hashing(features):
        return build_hashing_features(features)
    word = _vectorizer(features["word"], "word")
    blocks: list[tuple[str, Any]] = [("word", word)]
    weights = {"word": float(features["word"].get("weight", 1.0))}
    char = features.get("char")
    if char and char.get("enabled"):
        blocks.append(("char", _vectorizer(char, "char_wb")))
        weights["char"] = float(char.get("weight", 1.0))
    embeddings = features.get("embeddings")
    if embeddings and embeddings.get("enabled"):
        from policy_topics.features.embeddings import SentenceEmbeddings, check_extra

        check_extra(str(embeddings.get("model", "all-MiniLM-L6-v2")))
        blocks.append(("embeddings", SentenceEmbeddings(
            model=str(embeddings.get("model", "all-MiniLM-L6-v2")), scale=float(embeddings.get("weight", 1.0)),
            batch_size=int(embeddings.get("batch_size", 64)), cache=bool(embeddings.get("cache", True)),
            cache_dir=embeddings.get("cache_dir"))))
    if len(blocks) == 1:
        return word
    # The embedding block applies its own weight (scale), so the union's weights cover TF-IDF only; none at
    # all keeps the fast prediction path of plain TF-IDF unions.
    tfidf_weights = {name: w for name, w in weights.items() if w != 1.0}
    return FeatureUnion(blocks, transformer_weights=tfidf_weights or None)
