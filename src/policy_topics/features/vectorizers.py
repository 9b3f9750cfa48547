"""Text vectorizers that count n-grams faster than scikit-learn's, with the same results.

Counting n-grams is most of the TF-IDF cost of a fit (and of scoring a split, and of the hashing pass of
out-of-core training): scikit-learn cuts and counts each document's n-grams in Python. Two shortcuts:

- ``char_wb`` n-grams never cross a word boundary, so a document's counts are the sum of its words'
  counts: the n-grams of each *distinct* word are worked out once, and the document-term matrix is
  (documents x words) @ (words x n-grams), a sparse product done in C.
- other analyzers append the column of every n-gram occurrence to one flat array and let SciPy sum the
  duplicates, instead of one Python dict per document.

Vocabulary, counts, idf, hashed columns and every fitted attribute are those of scikit-learn's classes
(tested), so fitted ones behave, save and explain exactly like their parents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import text as sklearn_text
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer

_BUILTIN_ANALYZERS = ("word", "char", "char_wb")


def _align(matrix: Any) -> Any:
    """The sparse type scikit-learn's own vectorizers return (its ``sparse_interface`` setting)."""
    align = getattr(sklearn_text, "_align_api_if_sparse", None)
    return align(matrix) if align is not None else sparse.csr_matrix(matrix)


def _words_by_document(vectorizer: Any, documents: Iterable[Any], dtype: Any) -> tuple[list[str], sparse.csr_array]:
    """The distinct words (whitespace-split after the vectorizer's decoding and preprocessing), in order of
    first appearance, and the (documents x words) count matrix. scikit-learn's ``char_wb`` analyzer is the
    concatenation, word by word, of the n-grams of " word ": the same function of one word at a time."""
    preprocess = vectorizer.build_preprocessor()
    ids: dict[str, int] = {}
    columns: list[int] = []
    indptr = [0]
    for doc in documents:
        columns.extend([ids.setdefault(word, len(ids)) for word in preprocess(vectorizer.decode(doc)).split()])
        indptr.append(len(columns))
    counts = sparse.csr_array((np.ones(len(columns), dtype=dtype), np.asarray(columns, dtype=np.int64),
                               np.asarray(indptr, dtype=np.int64)), shape=(len(indptr) - 1, len(ids)))
    return list(ids), counts


def _canonical(matrix: Any, dtype: Any) -> sparse.csr_array:
    matrix = sparse.csr_array(matrix, dtype=dtype)
    matrix.sum_duplicates()  # sorted indices, as scikit-learn's counting gives
    return matrix


def _rows(columns: list[list[int]], width: int, dtype: Any) -> sparse.csr_array:
    """A count matrix with one row per list of column numbers (repeats summed)."""
    lengths = np.fromiter(map(len, columns), dtype=np.int64, count=len(columns))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.fromiter((c for row in columns for c in row), dtype=np.int64, count=int(indptr[-1]))
    return _canonical(sparse.csr_array((np.ones(len(flat), dtype=dtype), flat, indptr),
                                       shape=(len(columns), width)), dtype)


class FastTfidfVectorizer(TfidfVectorizer):
    """:class:`TfidfVectorizer` with a faster counting pass (same parameters, same output)."""

    def _count_vocab(self, raw_documents: Iterable[Any], fixed_vocab: bool) -> tuple[dict[str, int], Any]:
        if callable(self.analyzer) or self.analyzer not in _BUILTIN_ANALYZERS:
            return super()._count_vocab(raw_documents, fixed_vocab)
        if fixed_vocab:
            vocabulary = self.vocabulary_
            known = vocabulary.keys()

            def columns_of(grams: list[str]) -> list[int]:
                return [vocabulary[g] for g in grams if g in known]
        else:
            vocabulary = defaultdict()
            vocabulary.default_factory = vocabulary.__len__  # a new n-gram gets the next column

            def columns_of(grams: list[str]) -> list[int]:
                return [vocabulary[g] for g in grams]

        if self.analyzer == "char_wb":
            words, by_word = _words_by_document(self, raw_documents, self.dtype)
            word_grams = _rows([columns_of(self._char_wb_ngrams(w)) for w in words], len(vocabulary), self.dtype)
            counts = by_word @ word_grams
        else:
            analyze = self.build_analyzer()
            counts = _rows([columns_of(analyze(doc)) for doc in raw_documents], len(vocabulary), self.dtype)
        if not fixed_vocab:
            vocabulary = dict(vocabulary)
            if not vocabulary:
                raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        return vocabulary, _align(_canonical(counts, self.dtype))


class FastHashingVectorizer(HashingVectorizer):
    """:class:`HashingVectorizer` that hashes the ``char_wb`` n-grams of each distinct word once (same
    parameters, same output). Other analyzers, and ``alternate_sign`` (whose signed sums can cancel to
    explicit zeros), take scikit-learn's own path."""

    def transform(self, X: Iterable[Any]) -> Any:
        if isinstance(X, str) or self.analyzer != "char_wb" or self.alternate_sign:
            return super().transform(X)  # (scikit-learn refuses a lone string with its own message)
        self._validate_ngram_range()
        words, by_word = _words_by_document(self, X, self.dtype)
        hashed = (self._get_hasher().transform(self._char_wb_ngrams(w) for w in words) if words  # (no words:
                  else sparse.csr_array((0, self.n_features), dtype=self.dtype))  # FeatureHasher refuses none)
        counts = _canonical(by_word @ hashed, self.dtype)
        if self.binary:
            counts.data.fill(1)
        if self.norm is not None:
            from sklearn.preprocessing import normalize

            counts = normalize(counts, norm=self.norm, copy=False)
        return _align(counts)
