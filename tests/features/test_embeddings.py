"""Sentence-embedding features: the disk cache (hit/miss) and the missing-extra error, without torch."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from policy_topics.errors import ConfigError, MissingExtraError
from policy_topics.features import embeddings
from policy_topics.features.build import build_features
from policy_topics.features.embeddings import SentenceEmbeddings


class FakeEncoder:
    """Stands in for the SentenceTransformer: records what it was asked to embed."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size, normalize_embeddings, show_progress_bar, convert_to_numpy):
        self.calls.append(list(texts))
        rng = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=384) for t in texts]
        vectors = np.asarray(rng, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def encoder(monkeypatch) -> FakeEncoder:
    """The fake encoder, with cache writes allowed as in training (predicting never writes)."""
    fake = FakeEncoder()
    monkeypatch.setattr(embeddings, "_load_model", lambda model: fake)
    monkeypatch.setattr(embeddings, "_CACHES", {})
    monkeypatch.setenv(embeddings.CACHE_WRITES_ENV, "1")
    return fake


TEXTS = [f"A bill to amend title {i} of the United States Code" for i in range(40)]


def test_a_second_transform_reads_every_vector_from_the_disk_cache(encoder, tmp_path):
    first = SentenceEmbeddings(cache_dir=str(tmp_path)).fit(TEXTS).transform(TEXTS)
    assert first.shape == (40, 384) and first.dtype == np.float32
    assert sum(len(c) for c in encoder.calls) == 40
    assert list((tmp_path / "all-MiniLM-L6-v2").glob("*.npz"))

    embeddings._CACHES.clear()  # a new process: nothing in memory, everything on disk
    again = SentenceEmbeddings(cache_dir=str(tmp_path)).transform(list(reversed(TEXTS)))
    assert sum(len(c) for c in encoder.calls) == 40  # no text embedded twice
    np.testing.assert_array_equal(again, first[::-1])


def test_only_new_texts_are_embedded_and_scale_weighs_the_block(encoder, tmp_path):
    SentenceEmbeddings(cache_dir=str(tmp_path)).transform(TEXTS)
    extra = [f"Headline number {i}" for i in range(35)]
    scaled = SentenceEmbeddings(cache_dir=str(tmp_path), scale=2.0).transform(TEXTS[:5] + extra)
    assert encoder.calls[-1] == sorted(extra, key=lambda t: embeddings.text_key("all-MiniLM-L6-v2", t))
    np.testing.assert_allclose(np.linalg.norm(scaled, axis=1), 2.0, rtol=1e-5)


def test_small_batches_such_as_single_requests_are_not_written_to_the_cache(encoder, tmp_path):
    SentenceEmbeddings(cache_dir=str(tmp_path)).transform(["one request"])
    assert not (tmp_path / "all-MiniLM-L6-v2").exists()
    SentenceEmbeddings(cache_dir=str(tmp_path), cache=False).transform(TEXTS)
    assert not (tmp_path / "all-MiniLM-L6-v2").exists()


def test_outside_training_nothing_is_written_to_the_cache(encoder, tmp_path, monkeypatch):
    monkeypatch.delenv(embeddings.CACHE_WRITES_ENV)  # as in predict and serve
    first = SentenceEmbeddings(cache_dir=str(tmp_path)).transform(TEXTS)
    assert not (tmp_path / "all-MiniLM-L6-v2").exists()
    np.testing.assert_array_equal(SentenceEmbeddings(cache_dir=str(tmp_path)).transform(TEXTS), first)
    assert sum(len(c) for c in encoder.calls) == 80  # nothing kept: embedded again


def test_a_missing_extra_is_a_one_line_error_naming_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    features = {"word": {"ngram_range": [1, 2]}, "embeddings": {"enabled": True}}
    with pytest.raises(MissingExtraError) as info:
        build_features(features)
    message = str(info.value)
    assert "torch" in message and "pip install -e '.[embeddings]'" in message and "\n" not in message
    assert info.value.exit_code == 2


def test_an_unknown_embedding_model_is_a_config_error():
    with pytest.raises(ConfigError, match="not supported"):
        build_features({"word": {}, "embeddings": {"enabled": True, "model": "bert-large"}})


def test_the_error_path_imports_no_torch(monkeypatch):
    import sys

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sentence_transformers" else real(name, *a))
    before = "torch" in sys.modules
    with pytest.raises(MissingExtraError):
        embeddings.check_extra()
    assert ("torch" in sys.modules) == before
