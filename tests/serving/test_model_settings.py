"""What a model carries besides its pipeline: the training's text cleaning and its own auto-coding
threshold, used alike by predict, the server and the pyfunc model."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest
from conftest import TrainedStore, call_cli, request, running_server, store_client

pytestmark = pytest.mark.e2e

RAW = "Ｈｏｓｐｉｔａｌ   staffing\u200b rules\nfor  rural clinics"  # full-width letters, a zero-width space


@pytest.fixture(scope="module")
def stored(demo_store: TrainedStore) -> float:
    return store_client(demo_store.home).get_run(demo_store.run_id).data.metrics["autocode_threshold"]


def pyfunc(demo_store: TrainedStore):
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(demo_store.registered)


def test_predict_codes_at_the_models_own_threshold_and_says_so(demo_store, stored):
    result = call_cli(["predict", "A bill on hospital staffing", "Submarine procurement", "Crop insurance"],
                      demo_store.home)
    assert result.returncode == 0, result.stderr
    assert f"3 predictions from models:/topics-demo/1; coded = probability >= {stored:.2f}, the model's auto-coding " \
           "threshold" \
        in result.stderr and "validation documents it coded (target 90%)" in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert all((row["status"] == "coded") == (row["probability"] >= stored) for row in rows)
    given = call_cli(["predict", "--threshold", "0.99", "A bill on hospital staffing"], demo_store.home)
    assert "coded = probability >= 0.99 (the threshold given)" in given.stderr


def test_the_server_and_the_pyfunc_model_use_it_too(demo_store, stored, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{demo_store.home / 'mlruns' / 'mlflow.db'}")
    model = pyfunc(demo_store)
    assert model.metadata.get_params_schema().to_dict()[2] == {"name": "threshold", "type": "double",
                                                                "default": stored, "shape": None}
    with running_server(demo_store.home) as live:
        status, meta = request(live.url + "/metadata")
    assert status == 200 and meta["threshold"] == stored and meta["threshold_source"] == "model"
    assert meta["threshold_evidence"]["chosen_on"] == "validation documents"
    assert 0.9 <= meta["threshold_evidence"]["accuracy"] <= 1


def test_the_same_raw_text_gives_the_same_answer_everywhere_as_its_cleaned_form(demo_store, monkeypatch):
    import pandas as pd

    from policy_topics.data.prep import CleaningReport
    from policy_topics.data.prep import clean as prep_clean
    from policy_topics.data.text import normalize_text

    clean = normalize_text(RAW)
    assert clean == "Hospital staffing rules for rural clinics" and clean != unicodedata.normalize("NFKC", RAW)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{demo_store.home / 'mlruns' / 'mlflow.db'}")
    model = pyfunc(demo_store)
    predictor = model.unwrap_python_model().predictor
    trained = prep_clean(pd.DataFrame({"text": [RAW], "label": [3]}), "NFKC", "warn", "t.csv", CleaningReport())
    assert predictor.clean([RAW]) == trained["text"].tolist() == [clean]  # one cleaning, training's and ours
    features = predictor.features.transform(trained["text"].tolist()).toarray()
    assert np.allclose(predictor.transform(predictor.clean([RAW])).toarray(), features, atol=1e-6)
    frame = model.predict(pd.DataFrame({"text": [RAW, clean]}), params={"top_k": 3})
    assert frame["probability"][0] == frame["probability"][1] and frame["code"][0] == frame["code"][1]
    by_cli = [json.loads(line) for line in call_cli(["predict", RAW, clean], demo_store.home).stdout.splitlines()]
    assert by_cli[0]["top_topics"] == by_cli[1]["top_topics"] and by_cli[0]["text"] == RAW
    with running_server(demo_store.home) as live:
        status, body = request(live.url + "/predict", json.dumps({"texts": [RAW, clean]}).encode())
    assert status == 200 and body["predictions"][0]["top_topics"] == body["predictions"][1]["top_topics"]
    assert body["predictions"][0]["probability"] == pytest.approx(frame["probability"][0], abs=1e-6)
