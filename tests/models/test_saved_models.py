"""Models logged before the package was split into stage subpackages still load and answer as they did
(fixtures in tests/fixtures/legacy_models, logged by the flat-module code on the demo corpus)."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "legacy_models"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
SEEDS = sorted((REPO / "seeds").glob("*.txt"))


def answers(frame) -> list[dict]:
    return [{"seed": seed.name, "code": int(row.code), "probability": round(float(row.probability), 6),
             "explanation": [e["ngram"] for e in row.explanation]}
            for seed, row in zip(SEEDS, frame.itertuples(), strict=True)]


@pytest.mark.parametrize("kind", ["tfidf", "hashing"])
def test_a_model_logged_by_the_flat_modules_loads_through_mlflow_and_answers_as_it_did(kind: str):
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(str(FIXTURES / kind))
    frame = model.predict(pd.DataFrame({"text": [p.read_text() for p in SEEDS]}), params={"explain": 3})
    got = answers(frame)
    for mine, theirs in zip(got, EXPECTED[kind], strict=True):
        assert mine["code"] == theirs["code"], mine["seed"]
        assert mine["probability"] == pytest.approx(theirs["probability"], abs=1e-5), mine["seed"]
        # Explanations are in words today (char n-grams summed into the words they come from), so they need
        # not match the n-grams the flat modules listed: three words or phrases of the text itself.
        text = (REPO / "seeds" / mine["seed"]).read_text().lower()
        assert len(mine["explanation"]) == 3 and all(term in text for term in mine["explanation"]), mine


def test_its_skops_file_names_the_old_module_paths_and_they_are_trusted():
    from skops.io import get_untrusted_types

    from policy_topics.models.persistence import TRUSTED_NAMES, load_pipeline

    for kind, old in (("tfidf", "policy_topics.vectorizers.FastTfidfVectorizer"),
                      ("hashing", "policy_topics.vectorizers.FastHashingVectorizer")):
        folder = FIXTURES / kind / "artifacts" / "pipeline"
        named = set(get_untrusted_types(file=folder / "pipeline.skops"))
        assert old in named and old in TRUSTED_NAMES
        assert load_pipeline(folder).predict(["A bill on interest rates and inflation"]).shape == (1,)


def test_the_old_module_names_are_todays_modules():
    import importlib

    from policy_topics._legacy import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new)
    from policy_topics.vectorizers import FastTfidfVectorizer as Old  # type: ignore[import-not-found]

    from policy_topics.features.vectorizers import FastTfidfVectorizer

    assert Old is FastTfidfVectorizer


def test_configs_that_name_the_old_sweep_module_still_resolve():
    from hydra.utils import get_class, get_method

    from policy_topics.search.space import search_model_space
    from policy_topics.search.sweep import SweepCallback

    assert get_class("policy_topics.sweep.SweepCallback") is SweepCallback
    assert get_method("policy_topics.sweep.search_model_space") is search_model_space
