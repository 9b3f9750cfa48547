"""What ``suggest`` picks (policy_topics.models.active): documents the model is less sure of than a random sample,
never two copies of one text, the same picks for the same seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import compose

from policy_topics.models.active import distinct_rows, margins, pick

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "cap_demo.csv"


@pytest.fixture(scope="module")
def scored() -> tuple[list[str], np.ndarray]:
    """The demo corpus's texts not trained on, with the margins of the default model fit on a third of it."""
    from policy_topics.jobs.fitting import fit_one

    demo = pd.read_csv(DEMO).rename(columns={"major": "label"}).sample(frac=1.0, random_state=0)
    train, pool = demo.iloc[:300], demo.iloc[300:]
    cfg = compose("seed=0")
    pipeline = fit_one(cfg["features"], cfg["model"], train, 1)
    texts = pool["text"].tolist()
    return texts, margins(pipeline.predict_proba(texts))


def test_the_margin_is_the_gap_between_the_best_and_the_second_best_topic():
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.45, 0.45], [0.9, 0.05, 0.05]])
    assert margins(scores) == pytest.approx([0.2, 0.0, 0.85])


def test_suggest_picks_documents_the_model_is_less_sure_of_than_random_samples(scored):
    texts, margin = scored
    picked = pick(texts, -margin, 30, seed=0)
    rng = np.random.default_rng(0)
    random_means = [margin[rng.choice(len(texts), 30, replace=False)].mean() for _ in range(50)]
    assert margin[picked].mean() < min(random_means)
    assert np.all(np.diff(-margin[picked]) <= 0)  # most uncertain first


def test_the_same_seed_picks_the_same_documents(scored):
    texts, margin = scored
    assert pick(texts, -margin, 25, seed=3).tolist() == pick(texts, -margin, 25, seed=3).tolist()


def test_identical_texts_are_never_both_picked_even_when_they_are_the_most_uncertain():
    copies = ["Farm subsidies for dairy", "farm  subsidies for DAIRY", "Farm subsidies for dairy "]
    others = [f"Notice {i} on {word}" for i, word in enumerate(("bridges", "courts", "schools", "ports", "taxes",
                                                                 "rivers", "visas", "clinics"))]
    texts = copies + others
    uncertainty = np.array([1.0, 0.99, 0.98] + [0.1 * i for i in range(len(others))])
    picked = pick(texts, uncertainty, 5, seed=0)
    assert len(picked) == 5 and picked[0] == 0
    assert not {1, 2} & set(picked.tolist())
    assert len(distinct_rows([texts[i] for i in picked])) == 5


def test_a_batch_of_near_duplicates_is_spread_over_the_candidates_not_all_picked():
    near = [f"The council voted on the harbour dredging budget, item {i}" for i in range(12)]
    varied = ["Hospital wait times grew", "New tariffs on steel", "Police body cameras funded",
              "Wildfire crews hired", "Veterans' pensions delayed", "Broadband grants for farms"]
    texts = near + varied
    uncertainty = np.array([1.0 - 0.001 * i for i in range(12)] + [0.9 - 0.01 * i for i in range(6)])
    picked = pick(texts, uncertainty, 4, seed=0, candidates_per_pick=4)  # 16 candidates, 4 clusters
    assert sum(i < 12 for i in picked) < 4


def test_a_rerun_trains_on_the_recorded_sheets_and_refuses_one_changed_since(tmp_path):
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from policy_topics.data.sources import file_sha256
    from policy_topics.errors import DataSourceError
    from policy_topics.jobs.rerun import _same_sheets

    sheet = tmp_path / "round1.csv"
    sheet.write_text("id,text,code\na,Farm bill,4\n", encoding="utf-8")
    params = {"loop.sheet_0.path": str(sheet), "loop.sheet_0.sha256": file_sha256(sheet)}
    original = SimpleNamespace(data=SimpleNamespace(params=params))
    config = OmegaConf.create({"data": {"extra_coded": ["round1.csv"]}})
    _same_sheets(config, original, "r1")
    assert list(config.data.extra_coded) == [str(sheet)]
    sheet.write_text("id,text,code\na,Farm bill,7\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"round1\.csv, which run r1 was trained on, changed since"):
        _same_sheets(config, original, "r1")
