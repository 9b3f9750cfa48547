"""Every configured model builds from its YAML, fits, and gives class probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, load_group
from scipy import sparse

from policy_topics.errors import ConfigError
from policy_topics.evaluation.metrics import evaluate_split
from policy_topics.evaluation.report import ngram_table
from policy_topics.models.pipeline import build_pipeline, top_ngrams
from policy_topics.models.predictor import predict_topics

MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    frame = pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv").rename(columns={"major": "label"})
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_demo_corpus_has_at_least_40_documents_per_major_topic_in_both_styles(demo):
    counts = demo.groupby("label").size()
    assert len(counts) == 21 and counts.min() >= 40
    assert set(demo["style"]) == {"bill", "news"}
    assert not demo["text"].duplicated().any()


@pytest.mark.parametrize("model", MODELS)
def test_each_model_gives_probabilities_and_learns_the_demo_topics(model, demo):
    train, test = demo.iloc[:700], demo.iloc[700:]
    pipeline = build_pipeline(load_group("features", "word"), load_group("model", model), smallest_topic=20)
    pipeline.fit(train["text"].tolist(), train["label"].to_numpy())
    proba = pipeline.predict_proba(test["text"].tolist())
    assert proba.shape == (len(test), 21)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    result = evaluate_split(pipeline, test, "test")
    assert result.metrics["macro_f1"] > 0.45, model  # 21 topics: chance is about 0.05
    predicted = predict_topics(pipeline, ["A bill to expand Medicare coverage of hearing aids"])
    assert predicted.loc[0, "topic"] == "Health" and predicted.loc[0, "code"] == 3


def test_word_and_char_features_form_a_union_with_top_ngrams_per_topic(demo):
    pipeline = build_pipeline(load_group("features", "word_char"), load_group("model", "linearsvc"), smallest_topic=20)
    pipeline.fit(demo["text"].tolist(), demo["label"].to_numpy())
    names = pipeline.named_steps["features"].get_feature_names_out()
    assert any(n.startswith("word__") for n in names) and any(n.startswith("char__") for n in names)
    table = ngram_table(top_ngrams(pipeline, 5))
    assert len(table) == 21 * 5
    health = table[table["code"] == 3]["ngram"].str.replace("word__", "").tolist()
    assert any(term in " ".join(health) for term in ("medicare", "health", "medicaid", "hospital"))


def test_unknown_estimator_parameter_is_a_config_error():
    model = load_group("model", "linearsvc")
    model["estimator"]["gamma"] = 1.0
    with pytest.raises(ConfigError, match=r"model=linearsvc: cannot build sklearn\.svm\.LinearSVC"):
        build_pipeline(load_group("features", "word"), model, smallest_topic=5)


def test_calibration_folds_shrink_to_the_smallest_topic():
    pipeline = build_pipeline(load_group("features", "word"), load_group("model", "ridge"), smallest_topic=1)
    assert pipeline.named_steps["classifier"].cv == 2


@pytest.mark.parametrize("features, options", [
    ("word_char", {}),
    ("word", {"sublinear_tf": False}),
    ("word", {"binary": True, "use_idf": False}),
])
def test_the_fast_predictor_matches_the_scikit_learn_pipeline(demo, features, options):
    from policy_topics.models.predictor import TopicPredictor

    pipeline = build_pipeline(load_group("features", features), load_group("model", "linearsvc"), smallest_topic=20)
    vectorizers = [pipeline.named_steps["features"]]
    if hasattr(vectorizers[0], "transformer_list"):
        vectorizers = [v for _, v in vectorizers[0].transformer_list]
    for vectorizer in vectorizers:
        vectorizer.set_params(**options)
    pipeline.fit(demo["text"].tolist()[:600], demo["label"].to_numpy()[:600])
    texts = [*demo["text"].tolist()[600:700], "Ünïcode café policy, policy, policy!", "zzzz qqqq", "a"]
    predictor = TopicPredictor(pipeline)
    assert predictor._vectorize is not None  # the fast path for requests is taken
    reference = pipeline.named_steps["features"].transform(texts)
    for features in (predictor._vectorize.transform(texts), predictor.transform(texts),  # request path, batch
                     sparse.vstack([predictor.transform(texts[i:i + 5]) for i in range(0, len(texts), 5)])):
        np.testing.assert_allclose(features.toarray(), reference.toarray(), atol=1e-6)
    np.testing.assert_allclose(predictor.predict_proba(texts), pipeline.predict_proba(texts), atol=1e-6)
    np.testing.assert_allclose(predictor.predict_proba(texts[:3]), pipeline.predict_proba(texts[:3]), atol=1e-6)


@pytest.mark.e2e  # starts worker processes
def test_fits_in_worker_processes_give_the_same_models_as_fits_in_this_process(demo):
    from policy_topics.jobs.fitting import fit_all, worker_count

    if worker_count(2, 2) < 2:
        pytest.skip("this process may use one core only: fit_all fits here")
    container = {"features": load_group("features", "word_char"), "model": load_group("model", "linearsvc"),
                 "blas_threads": 1}
    frames = [demo.iloc[:600], demo.iloc[200:]]
    here = fit_all({**container, "fit_processes": 1}, frames)
    in_workers = fit_all({**container, "fit_processes": 2}, frames)
    texts = demo["text"].iloc[::7].tolist()
    for a, b in zip(here, in_workers, strict=True):
        assert np.array_equal(a.predict_proba(texts), b.predict_proba(texts))
    assert not np.allclose(here[0].predict_proba(texts), here[1].predict_proba(texts))  # two different fits


def test_worker_count_never_exceeds_the_fits_or_the_cores():
    from policy_topics.jobs.fitting import available_cores, worker_count

    assert worker_count(8, 1) == 1 and worker_count(1, 5) == 1 and worker_count(0, 3) == 1
    assert worker_count(64, 64) == available_cores()
