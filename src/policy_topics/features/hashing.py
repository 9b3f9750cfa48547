"""Hashed n-gram features: a vocabulary-free TF-IDF whose memory does not grow with the corpus.

Each block (word n-grams, optionally ``char_wb`` n-grams) hashes raw counts (``alternate_sign=False``)
and applies its own tf-idf and l2 norm, side by side as in the TF-IDF path. The blocks can also be applied
in two steps (raw counts once, tf-idf per epoch), which is what out-of-core training does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.pipeline import FeatureUnion, Pipeline

from policy_topics.errors import ConfigError
from policy_topics.features.vectorizers import FastHashingVectorizer

Blocks = Sequence[tuple[str, HashingVectorizer, TfidfTransformer]]
_HASH_KEYS = ("ngram_range", "lowercase", "strip_accents", "stop_words", "analyzer", "n_features")

def is_hashing(features: Mapping[str, Any]) -> bool:
    return str(features.get("kind", "tfidf")) == "hashing"


def _block(settings: Mapping[str, Any], analyzer: str, group: str, idf: bool) -> Pipeline:
    kwargs = {key: settings[key] for key in _HASH_KEYS if key in settings}
    kwargs["analyzer"] = kwargs.get("analyzer", analyzer)
    kwargs["ngram_range"] = tuple(kwargs.get("ngram_range", (1, 1)))
    try:
        kwargs["n_features"] = int(kwargs.get("n_features", 2**18))
        if kwargs["n_features"] < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"features.{group}.n_features={kwargs.get('n_features')!r} must be a positive number "
                          "of hashed columns, e.g. 262144") from None
    return Pipeline([
        ("hash", FastHashingVectorizer(**kwargs, alternate_sign=False, norm=None, dtype=np.float32)),
        ("tfidf", TfidfTransformer(use_idf=idf, sublinear_tf=bool(settings.get("sublinear_tf", True)), norm="l2")),
    ])


def build_hashing_features(features: Mapping[str, Any]) -> FeatureUnion:
    """Hashed word n-grams (and ``char_wb`` n-grams when ``features.char.enabled``), each block with its
    own tf-idf and l2 norm, side by side as in the TF-IDF path."""
    idf = bool(features.get("idf", True))
    blocks = [("word", _block(features["word"], "word", "word", idf))]
    char = features.get("char")
    if char and char.get("enabled"):
        blocks.append(("char", _block(char, "char_wb", "char", idf)))
    return FeatureUnion(blocks)


def hashing_blocks(features: Any) -> list[tuple[str, HashingVectorizer, TfidfTransformer]] | None:
    """(name, hasher, tf-idf) of each block of a hashing feature union; None for other features."""
    if not isinstance(features, FeatureUnion):
        return None
    blocks = []
    for name, step in features.transformer_list:
        if not (isinstance(step, Pipeline) and isinstance(step.steps[0][1], HashingVectorizer)
                and isinstance(step.steps[-1][1], TfidfTransformer)):
            return None
        blocks.append((name, step.steps[0][1], step.steps[-1][1]))
    return blocks


def hashed_ngrams(features: Any, texts: Iterable[str]) -> dict[int, str]:
    """Column -> ``block__ngram`` for the n-grams of ``texts`` (a hashing model keeps no vocabulary, so
    names come from texts). Where n-grams collide in one column, the most frequent one names it, and of
    equally frequent ones the first in alphabetical order, so the names do not depend on the process's
    string hashing (``PYTHONHASHSEED``)."""
    from collections import Counter

    from sklearn.feature_extraction import FeatureHasher

    blocks = hashing_blocks(features)
    if blocks is None:
        raise TypeError("not a hashing feature union")
    names: dict[int, str] = {}
    offset = 0
    texts = list(texts)
    for name, hasher, _ in blocks:
        counts = Counter(gram for text in texts for gram in set(hasher.build_analyzer()(text)))
        grams = list(counts)
        if grams:
            columns = FeatureHasher(n_features=hasher.n_features, input_type="string",
                                    alternate_sign=False).transform([[g] for g in grams]).indices
            best: dict[int, tuple[int, str]] = {}
            for gram, column in zip(grams, columns.tolist(), strict=True):
                if column not in best or (-counts[gram], gram) < (-best[column][0], best[column][1]):
                    best[column] = (counts[gram], gram)
            names.update({offset + c: f"{name}__{gram}" for c, (_, gram) in best.items()})
        offset += hasher.n_features
    return names


RAW_COUNTS_CHUNK = 1_000


def raw_counts(blocks: Blocks, texts: Sequence[str], chunk: int = RAW_COUNTS_CHUNK) -> sparse.csr_matrix:
    """Raw hashed counts of ``texts``, side-by-side blocks, float32. Hashed ``chunk`` texts at a time and
    stacked: the same matrix, but the analyzers' intermediate n-gram lists and index arrays only ever
    exist for one chunk (for 5,000 synthetic documents the traced peak fell from 60 to 24 MiB with chunks
    of 1,000; smaller chunks saved nothing more)."""
    if chunk < 1:
        raise ConfigError(f"raw_counts: chunk must be at least 1, not {chunk}")
    parts = [sparse.hstack([hasher.transform(texts[i:i + chunk]) for _, hasher, _ in blocks], format="csr",
                           dtype=np.float32) for i in range(0, max(1, len(texts)), chunk)]
    return parts[0] if len(parts) == 1 else sparse.vstack(parts, format="csr", dtype=np.float32)


def tfidf(blocks: Blocks, counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """What the fitted feature union gives for texts, from their raw hashed counts (side-by-side blocks):
    each block's sublinear tf, idf and l2 norm, worked out on the whole matrix at once (no column slices
    or re-stacking, which cost more than the arithmetic). Equal to the union's own output up to float32
    rounding (tested)."""
    if any(transformer.norm != "l2" for _, _, transformer in blocks):
        return _tfidf_by_block(blocks, counts)
    widths = [hasher.n_features for _, hasher, _ in blocks]
    offsets = np.cumsum([0, *widths])
    indices, indptr = counts.indices, counts.indptr
    block = (np.searchsorted(offsets, indices, side="right") - 1) if len(blocks) > 1 else None
    data = counts.data.astype(np.float32, copy=True)
    sublinear = [bool(t.sublinear_tf) for _, _, t in blocks]
    if all(sublinear):
        np.log(data, out=data)
        data += 1
    elif any(sublinear):
        mask = np.isin(block, [b for b, on in enumerate(sublinear) if on])
        data[mask] = np.log(data[mask]) + 1
    if any(t.use_idf for _, _, t in blocks):
        idf = np.concatenate([t.idf_ if t.use_idf else np.ones(w) for (_, _, t), w in zip(blocks, widths, strict=True)])
        data *= idf[indices].astype(np.float32)
    n_rows = counts.shape[0]
    key = np.repeat(np.arange(n_rows) * len(blocks), np.diff(indptr))
    if block is not None:
        key += block
    norms = np.sqrt(np.bincount(key, weights=np.square(data, dtype=np.float64), minlength=n_rows * len(blocks)))
    norms[norms == 0] = 1.0
    data /= norms[key].astype(np.float32)
    return sparse.csr_matrix((data, indices, indptr), shape=counts.shape)


def _tfidf_by_block(blocks: Blocks, counts: sparse.csr_matrix) -> sparse.csr_matrix:
    parts, offset = [], 0
    for _, hasher, transformer in blocks:
        parts.append(transformer.transform(counts[:, offset:offset + hasher.n_features]))
        offset += hasher.n_features
    return sparse.hstack(parts, format="csr", dtype=np.float32)
