"""The out-of-core path's whole-matrix arithmetic equals scikit-learn's block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from policy_topics.features.hashing import build_hashing_features, hashing_blocks, raw_counts, tfidf

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "cap_demo.csv"


@pytest.mark.parametrize(("sublinear_char", "idf"), [(True, True), (False, True), (True, False)])
def test_tfidf_of_the_whole_matrix_equals_each_blocks_transformer(sublinear_char, idf):
    texts = [*pd.read_csv(DEMO)["text"].head(200).tolist(), "", "   "]
    features = build_hashing_features({
        "idf": idf, "word": {"n_features": 2**14, "ngram_range": [1, 2], "sublinear_tf": True},
        "char": {"enabled": True, "analyzer": "char_wb", "n_features": 2**12, "ngram_range": [2, 4],
                 "sublinear_tf": sublinear_char}}).fit(texts)
    blocks = hashing_blocks(features)
    got = tfidf(blocks, raw_counts(blocks, texts))
    want = features.transform(texts)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=1e-5, atol=1e-6)
    assert got[-2:].nnz == 0


def test_raw_counts_hashed_in_chunks_equal_the_whole_batch():
    from policy_topics.errors import ConfigError

    features = {"kind": "hashing", "word": {"n_features": 2**10, "ngram_range": [1, 2]},
                "char": {"enabled": True, "analyzer": "char_wb", "n_features": 2**8, "ngram_range": [2, 4]}}
    blocks = hashing_blocks(build_hashing_features(features))
    texts = [f"health bill {i} for rural clinics and roads {i % 3}" for i in range(23)]
    whole = raw_counts(blocks, texts, chunk=len(texts))
    for chunk in (1, 5, 22):
        part = raw_counts(blocks, texts, chunk=chunk)
        assert part.shape == whole.shape and part.dtype == whole.dtype and (part != whole).nnz == 0
    with pytest.raises(ConfigError, match="chunk"):
        raw_counts(blocks, texts, chunk=0)
