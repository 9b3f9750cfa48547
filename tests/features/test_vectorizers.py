"""The fast TF-IDF vectorizer gives exactly what scikit-learn's TfidfVectorizer gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer

from policy_topics.features.vectorizers import FastHashingVectorizer, FastTfidfVectorizer

EDGE_TEXTS = [
    "Café  crème\tbrûlée —  Économie",   # accents, runs of whitespace, a tab
    "a I x",                             # words shorter than the n-gram sizes
    "",                                  # an empty document
    "   ",
    "ÅNGSTRÖM units\nfor the Navy's radar",
    "Tax tax TAX tax",                   # repeated n-grams within one document
]

SETTINGS = [
    {"analyzer": "char_wb", "ngram_range": (2, 4), "min_df": 3, "max_df": 0.2, "sublinear_tf": True,
     "strip_accents": "unicode", "dtype": np.float32},
    {"analyzer": "char_wb", "ngram_range": (1, 6), "lowercase": False},
    {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True, "strip_accents": "unicode"},
    {"analyzer": "word", "ngram_range": (1, 1), "stop_words": "english", "binary": True, "max_features": 500},
    {"analyzer": "char", "ngram_range": (2, 3), "min_df": 2},
]


def assert_same_matrix(ours, theirs) -> None:
    assert type(ours) is type(theirs) and ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-6)


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[str]]:
    texts = pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv")["text"].tolist()
    return texts[::2] + EDGE_TEXTS, texts[1::2] + EDGE_TEXTS + ["zzzz qqqq, never seen"]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s['analyzer']}-{s['ngram_range']}")
def test_fast_vectorizer_matches_scikit_learn_on_fit_and_transform(corpus, settings):
    train, new = corpus
    ours, theirs = FastTfidfVectorizer(**settings), TfidfVectorizer(**settings)
    fitted = ours.fit_transform(train), theirs.fit_transform(train)
    assert ours.vocabulary_ == theirs.vocabulary_
    np.testing.assert_array_equal(ours.idf_, theirs.idf_)
    assert_same_matrix(*fitted)
    assert_same_matrix(ours.transform(new), theirs.transform(new))


def test_fast_vectorizer_refuses_an_empty_vocabulary_as_scikit_learn_does():
    with pytest.raises(ValueError, match="empty vocabulary"):
        FastTfidfVectorizer(analyzer="char_wb").fit(["", "  "])


@pytest.mark.parametrize("settings", [
    {"ngram_range": (2, 4), "n_features": 2**16, "alternate_sign": False, "norm": None, "dtype": np.float32},
    {"ngram_range": (1, 5), "n_features": 2**10, "alternate_sign": False, "strip_accents": "unicode", "binary": True},
    {"ngram_range": (3, 3), "n_features": 2**18, "alternate_sign": False, "lowercase": False, "norm": "l1"},
    {"ngram_range": (2, 4), "n_features": 2**8},  # alternate signs: scikit-learn's own path
], ids=["counts", "binary-l2-collisions", "l1", "alternate-sign"])
def test_fast_hashing_vectorizer_matches_scikit_learn_for_char_wb(corpus, settings):
    texts = corpus[0] + corpus[1]
    assert_same_matrix(FastHashingVectorizer(analyzer="char_wb", **settings).fit_transform(texts),
                       HashingVectorizer(analyzer="char_wb", **settings).fit_transform(texts))


def test_fast_hashing_vectorizer_refuses_a_lone_string_as_scikit_learn_does():
    with pytest.raises(ValueError, match="Iterable over raw text documents expected"):
        FastHashingVectorizer(analyzer="char_wb").transform("one text")


def test_fast_hashing_vectorizer_gives_empty_rows_for_texts_without_words():
    empty = FastHashingVectorizer(analyzer="char_wb", alternate_sign=False).transform(["", "  \t"])
    assert empty.shape == (2, 2**20) and empty.nnz == 0
