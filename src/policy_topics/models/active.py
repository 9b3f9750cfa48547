"""Which uncoded documents to code next (active learning): the least sure of the model, kept diverse.

:func:`margins` scores each document by the gap between the model's best and second-best topic (small-text's
``BreakingTies``; Luo et al. 2005): a small gap is a document the model cannot tell between two topics, where
a code teaches it most. :func:`pick` takes the most uncertain documents, collapses identical texts (after
normalization) to one, and spreads the choice over the candidates' TF-IDF space: the top candidates are
clustered into as many clusters as documents wanted and the most uncertain of each cluster is taken, so a
batch of near-duplicates is never all picked. Seeded: the same scores, texts and seed pick the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from policy_topics.data.text import normalize_text

CANDIDATES_PER_PICK = 4  # the most uncertain n * this many documents are clustered into n clusters


def margins(scores: np.ndarray) -> np.ndarray:
    """Best minus second-best score of each row (probabilities or decision scores): lower is more uncertain."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError("margins need a (documents, topics) score matrix of at least two topics")
    top_two = np.partition(scores, scores.shape[1] - 2, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


def text_key(text: str) -> str:
    """What makes two texts the same document here: equal after NFKC normalization, case and spaces folded."""
    return " ".join(normalize_text(str(text), "NFKC").casefold().split())


def distinct_rows(texts: Sequence[str]) -> np.ndarray:
    """Indices of the first row of each text, comparing texts by :func:`text_key`."""
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        seen.setdefault(text_key(text), i)
    return np.fromiter(seen.values(), dtype=int, count=len(seen))


def pick(texts: Sequence[str], uncertainty: np.ndarray, n: int, seed: int,
         candidates_per_pick: int = CANDIDATES_PER_PICK) -> np.ndarray:
    """Indices of ``n`` rows to code, most uncertain first (``uncertainty``: higher = less sure, e.g. minus
    :func:`margins`); never two rows of the same normalized text; diverse among the top candidates."""
    uncertainty = np.asarray(uncertainty, dtype=float)
    pool = distinct_rows(texts)
    if n >= len(pool):
        return pool[np.argsort(-uncertainty[pool], kind="stable")]
    order = pool[np.argsort(-uncertainty[pool], kind="stable")]
    candidates = order[: min(len(order), max(n, n * candidates_per_pick))]
    if len(candidates) == n:
        return candidates
    chosen = _one_per_cluster([str(texts[i]) for i in candidates], n, seed)
    picked = candidates[chosen]
    return picked[np.argsort(-uncertainty[picked], kind="stable")]


def _one_per_cluster(texts: list[str], n: int, seed: int) -> np.ndarray:
    """Positions (in ``texts``, ordered most uncertain first) of the first member of each of ``n`` k-means
    clusters of their TF-IDF vectors; topped up in order when clusters come out empty."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        vectors = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    except ValueError:  # no word at all (texts of digits or punctuation): no space to spread over
        return np.arange(n)
    labels = KMeans(n_clusters=n, n_init=1, random_state=seed).fit_predict(vectors)
    _, first = np.unique(labels, return_index=True)
    chosen = list(np.sort(first))
    if len(chosen) < n:
        taken = set(chosen)
        chosen += [i for i in range(len(texts)) if i not in taken][: n - len(chosen)]
    return np.sort(np.asarray(chosen, dtype=int))
