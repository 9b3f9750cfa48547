"""Explanations in words: char n-grams summed back into the words they come from, weights that add up to
the features' part of the score, and the embedding block's share said as such."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, compose

from policy_topics.models.explanations import EMBEDDING_ITEM
from policy_topics.models.pipeline import class_weights, fit_pipeline
from policy_topics.models.predictor import TopicPredictor

TEXT = "Senators agreed to raise the tariffs on imported steel and aluminium from Canada"


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv").rename(columns={"major": "label"})


def feature_score(predictor: TopicPredictor, text: str, code: int) -> tuple[float, np.ndarray, np.ndarray]:
    row = predictor.transform(predictor.clean([text])).getrow(0)
    column = predictor.codes.index(code)
    contributions = row.data * class_weights(predictor.classifier)[column, row.indices]
    return float(contributions.sum()), row.indices, contributions


def test_an_explanation_lists_the_texts_words_and_adds_up_to_the_features_part_of_the_score(demo):
    config = compose()  # word and char TF-IDF
    predictor = TopicPredictor(fit_pipeline(config["features"], config["model"], demo))
    record = predictor.predict_records([TEXT], explain=10**6)[0]
    words = set(TEXT.lower().split())
    assert all(set(item["ngram"].split()) <= words for item in record["explanation"]), record["explanation"]
    assert {item["kind"] for item in record["explanation"]} <= {"word", "phrase"}
    total, _, _ = feature_score(predictor, TEXT, record["code"])
    assert sum(item["weight"] for item in record["explanation"]) == pytest.approx(total, abs=1e-4)
    top = predictor.predict_records([TEXT], explain=3)[0]["explanation"]
    assert [item["ngram"] for item in top] == [item["ngram"] for item in record["explanation"][:3]]
    assert top[0]["weight"] > 0 and 0 < top[0]["share"] <= 1


def test_with_embedding_features_the_explanation_says_how_much_the_embeddings_decided(demo, monkeypatch):
    from policy_topics.features import embeddings

    class Encoder:  # stands in for MiniLM: a fixed random vector per text
        def encode(self, texts, **_: object) -> np.ndarray:
            vectors = np.asarray([np.random.default_rng(len(t) * 7919 + ord(t[0])).normal(size=384)
                                  for t in texts], dtype=np.float32)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    monkeypatch.setattr(embeddings, "_load_model", lambda model: Encoder())
    config = compose("features=word_char_minilm", "features.embeddings.cache=false")
    predictor = TopicPredictor(fit_pipeline(config["features"], config["model"], demo))
    record = predictor.predict_records([TEXT], explain=10**6)[0]
    embedded = [item for item in record["explanation"] if item["kind"] == "embeddings"]
    assert [item["ngram"] for item in embedded] == [EMBEDDING_ITEM]
    total, columns, contributions = feature_score(predictor, TEXT, record["code"])
    names = predictor.features.get_feature_names_out()[columns]
    from_embeddings = contributions[[str(n).startswith("embeddings__") for n in names]].sum()
    assert embedded[0]["weight"] == pytest.approx(from_embeddings, abs=1e-5)
    assert sum(item["weight"] for item in record["explanation"]) == pytest.approx(total, abs=1e-4)
    positive = sum(i["weight"] for i in record["explanation"] if i["weight"] > 0)
    assert embedded[0]["share"] == pytest.approx(max(from_embeddings, 0) / positive, abs=1e-3)


def test_the_per_topic_top_ngrams_of_a_word_and_char_model_are_words(demo):
    from policy_topics.models.pipeline import top_ngrams

    config = compose()
    table = top_ngrams(fit_pipeline(config["features"], config["model"], demo), 10)
    assert all(name.startswith("word__") for ngrams in table.values() for name, _ in ngrams)
