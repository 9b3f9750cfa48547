"""Out-of-core training (experiment=out_of_core): streamed batches, hashing features, partial_fit, and the
train command end to end. The unit tests use small made-up corpora written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import call_cli

from policy_topics.data.batches import iter_batches
from policy_topics.errors import ConfigError, DataFormatError, DataSourceError
from policy_topics.features.hashing import hashing_blocks, raw_counts, tfidf
from policy_topics.models import out_of_core

WORDS = {
    3: "health hospital medicare insulin clinic doctors nurses patients",
    8: "energy grid battery solar oil pipeline electricity nuclear",
    16: "defense navy army shipbuilding missile veterans troops base",
    10: "highway transit rail airport bridges roads trucking aviation",
}
FEATURES = {"kind": "hashing", "idf": True,
            "word": {"n_features": 2**12, "ngram_range": [1, 2], "sublinear_tf": True, "lowercase": True,
                     "strip_accents": "unicode"},
            "char": {"enabled": True, "analyzer": "char_wb", "n_features": 2**10, "ngram_range": [2, 4],
                     "sublinear_tf": True}}


def model(**stream) -> dict:
    return {"name": "sgd_stream",
            "estimator": {"_target_": "sklearn.linear_model.SGDClassifier", "loss": "log_loss", "alpha": 1e-4,
                          "class_weight": "balanced", "random_state": 0},
            "stream": {"batch_size": 50, "epochs": 5, "workers": 1, **stream},
            "calibration": {"always": False}}


def corpus(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = rng.choice(list(WORDS), n, p=[0.4, 0.3, 0.2, 0.1])
    texts = [" ".join(rng.choice(WORDS[c].split(), 5)) + " act of congress" for c in codes]
    return pd.DataFrame({"text": texts, "label": codes.astype("int64")})


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ooc") / "train.parquet"
    corpus(400).to_parquet(path, row_group_size=64)
    return path


def test_batches_are_bounded_and_cover_every_row(parquet):
    batches = list(iter_batches(parquet, 64))
    assert [len(t) for t, _ in batches] == [64] * 6 + [16]
    assert all(len(t) == len(y) for t, y in batches)
    frame = pd.read_parquet(parquet)
    assert [text for texts, _ in batches for text in texts] == frame["text"].tolist()


def test_batches_from_a_datasets_dataset():
    import datasets

    ds = datasets.Dataset.from_pandas(corpus(30))
    assert [len(t) for t, _ in iter_batches(ds, 8)] == [8, 8, 8, 6]
    with pytest.raises(DataFormatError, match="column 'body' not found"):
        next(iter_batches(ds, 8, text_column="body"))


def test_streamed_model_matches_the_in_memory_features_and_learns(parquet):
    fitted = out_of_core.fit_stream(FEATURES, model(), [parquet], seed=0)
    pipeline, frame = fitted.pipeline, pd.read_parquet(parquet)
    assert fitted.n_docs == 400 and list(pipeline.classes_) == sorted(WORDS)
    # The idf counted batch by batch is the one TfidfTransformer computes with all rows in memory.
    from policy_topics.features.build import build_features

    in_memory = build_features(FEATURES).fit(frame["text"].tolist())
    for (_, streamed), (_, whole) in zip(pipeline.named_steps["features"].transformer_list,
                                         in_memory.transformer_list, strict=True):
        np.testing.assert_allclose(streamed.named_steps["tfidf"].idf_, whole.named_steps["tfidf"].idf_, rtol=1e-6)
    # tf-idf from the cached raw counts is what the saved pipeline computes from texts.
    blocks = hashing_blocks(pipeline.named_steps["features"])
    texts = frame["text"].head(20).tolist()
    from_counts = tfidf(blocks, raw_counts(blocks, texts))
    np.testing.assert_allclose(from_counts.toarray(), pipeline.named_steps["features"].transform(texts).toarray(),
                               rtol=1e-5, atol=1e-6)
    assert (pipeline.predict(texts) == frame["label"].head(20).to_numpy()).mean() >= 0.9
    assert np.allclose(pipeline.predict_proba(texts).sum(axis=1), 1)


def test_same_model_whatever_the_number_of_hashing_processes(parquet):
    one = out_of_core.fit_stream(FEATURES, model(workers=1), [parquet], seed=3).pipeline
    two = out_of_core.fit_stream(FEATURES, model(workers=2), [parquet], seed=3).pipeline
    np.testing.assert_array_equal(one.named_steps["classifier"].coef_, two.named_steps["classifier"].coef_)
    # The hashing pool is the stream's own: joblib's process pool (scikit-learn n_jobs) still works after it.
    from joblib import Parallel, delayed

    assert Parallel(n_jobs=2, backend="loky")(delayed(abs)(i) for i in (-1, -2)) == [1, 2]


def test_hashing_helpers_hash_without_loading_pandas_or_pyarrow(tmp_path):
    blocks = out_of_core.blocks_for(FEATURES)
    texts = ["tax credit for family farms", "insulin prices for patients"]
    probe = "{m: type(__import__('sys').modules.get(m)).__name__ for m in ('sklearn', 'pandas', 'pyarrow')}"
    with out_of_core.hashing_processes(out_of_core.StreamSettings(workers=2)) as executor:
        in_helper = executor.submit(out_of_core._hash_batch, blocks, texts, str(tmp_path / "helper.npz")).result()
        loaded = executor.submit(eval, probe).result()
    here = out_of_core._hash_batch(blocks, texts, str(tmp_path / "here.npz"))
    np.testing.assert_array_equal(in_helper, here)
    assert loaded == {"sklearn": "module", "pandas": "NoneType", "pyarrow": "NoneType"}


def test_epochs_are_cut_to_the_document_budget():
    settings = out_of_core.StreamSettings(epochs=10, doc_budget=300_000)
    assert [settings.epochs_for(n) for n in (3_000, 100_000, 1_000_000)] == [10, 3, 1]
    assert out_of_core.StreamSettings(epochs=4, doc_budget=0).epochs_for(10**9) == 4


def test_streamed_model_saves_loads_and_explains_with_ngrams(parquet, tmp_path):
    from policy_topics.models.persistence import load_pipeline, save_pipeline
    from policy_topics.models.pipeline import top_ngrams
    from policy_topics.models.predictor import TopicPredictor

    pipeline = out_of_core.fit_stream(FEATURES, model(), [parquet], seed=0).pipeline
    save_pipeline(pipeline, tmp_path / "model")
    loaded = load_pipeline(tmp_path / "model")
    text = "new insulin clinic for patients"
    np.testing.assert_allclose(loaded.predict_proba([text]), pipeline.predict_proba([text]))
    record = TopicPredictor(loaded).predict_records([text], explain=3)[0]
    assert record["code"] == 3
    assert record["explanation"] and all(e["ngram"] in text for e in record["explanation"])
    top = top_ngrams(pipeline, 5, pd.read_parquet(parquet)["text"].tolist())
    assert any(word in " ".join(n for n, _ in top[8]) for word in WORDS[8].split())


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"stream": {"batch_size": 0}}, ConfigError, "model.stream.batch_size=0 must be at least 1"),
    ({"stream": {"epochs": "many"}}, ConfigError, "model.stream.epochs must be an integer"),
    ({"estimator": {"loss": "hinge"}}, ConfigError, "streamed training cannot calibrate"),
    ({"estimator": {"_target_": "sklearn.svm.LinearSVC"}}, ConfigError, "needs sklearn.linear_model.SGDClassifier"),
])
def test_bad_settings_get_one_line_typed_errors(change, error, message):
    settings = model()
    for key, values in change.items():
        settings[key] = {**settings[key], **values}
    with pytest.raises(error, match=message) as info:
        out_of_core.check_config(FEATURES, settings, {})
    assert "\n" not in str(info.value)


def test_tfidf_features_with_a_streamed_model_are_refused():
    with pytest.raises(ConfigError, match="set features=hashing"):
        out_of_core.check_config({"word": {}}, model(), {})


def test_missing_or_invalid_parquet_gets_one_line(tmp_path, parquet):
    with pytest.raises(DataSourceError, match=r"Parquet file not found: .*nope\.parquet"):
        out_of_core.fit_stream(FEATURES, model(), [tmp_path / "nope.parquet"])
    bad = tmp_path / "bad.parquet"
    bad.write_text("text,label\nnot parquet,3\n")
    with pytest.raises(DataFormatError, match=r"bad\.parquet is not a readable Parquet file"):
        out_of_core.fit_stream(FEATURES, model(), [bad])
    renamed = tmp_path / "renamed.parquet"
    pd.read_parquet(parquet).rename(columns={"text": "body"}).to_parquet(renamed)
    with pytest.raises(DataFormatError, match=r"column .text. not found in renamed\.parquet; columns found: body"):
        out_of_core.fit_stream(FEATURES, model(), [renamed])


# --- end to end: the real command on the shipped demo corpus ---------------------------------------


@pytest.mark.e2e
def test_train_out_of_core_logs_a_model_that_loads_and_predicts(home):
    import mlflow

    result = call_cli(["train", "experiment=out_of_core", "model.stream.batch_size=200"], home)
    assert result.returncode == 0, result.stderr
    for stage in ("hash splits", "fit", "evaluate validation", "refit on train+val", "evaluate test", "log model"):
        assert stage in result.stdout
    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.search_runs([client.get_experiment_by_name("demo").experiment_id])[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["model.name"] == "sgd_stream" and run.data.params["features.kind"] == "hashing"
    assert run.data.metrics["test_macro_f1"] >= 0.6 and run.data.metrics["val_n_docs"] > 0
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "per_topic_test.csv", "confusion_test.png", "top_ngrams.csv", "model_card.md"} <= names
    mlflow.set_tracking_uri(uri)
    model_uri = result.stdout.split("  model ", 1)[1].split()[0]
    loaded = mlflow.pyfunc.load_model(model_uri)
    out = loaded.predict(pd.DataFrame({"text": ["A bill to expand Medicare coverage of hearing aids", ""]}),
                         params={"explain": 2})
    assert out["topic"][0] == "Health" and out["status"].tolist()[1] == "empty"
    assert out["explanation"][0] and out["explanation"][0][0]["kind"] in ("word", "char")


@pytest.mark.e2e
def test_train_out_of_core_bad_settings_fail_before_any_run(empty_home):
    # (the other settings errors go through the same check_config; unit-tested above)
    result = call_cli(["train", "experiment=out_of_core", "model.stream.batch_size=0"], empty_home)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: model.stream.batch_size=0 must be at least 1, e.g. model.stream.batch_size=5000"], \
        result.stderr
    assert not (empty_home / "mlruns").exists()
