"""model.topic_balance weighs the rows of rare topics up by a chosen degree, between none and 'balanced'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, compose
from sklearn.utils.class_weight import compute_sample_weight

from policy_topics.errors import ConfigError
from policy_topics.models.pipeline import build_pipeline, fit_pipeline
from policy_topics.models.weighting import balanced_weights

LABELS = np.array([1] * 12 + [3] * 5 + [20] * 2)


@pytest.fixture(scope="module")
def skewed() -> pd.DataFrame:
    """The demo corpus with its topics thinned to uneven sizes (all of topic 1, a fifth of the others)."""
    frame = pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv").rename(columns={"major": "label"})
    keep = (frame["label"] == 1) | (frame.groupby("label").cumcount() < 10)
    return frame[keep].reset_index(drop=True)


def test_topic_balance_0_leaves_every_row_its_own_weight():
    given = np.linspace(0.5, 2.0, len(LABELS))
    assert np.array_equal(balanced_weights(LABELS, 0.0, given), given)


def test_topic_balance_1_gives_the_weights_of_scikit_learns_balanced_setting():
    assert np.allclose(balanced_weights(LABELS, 1.0), compute_sample_weight("balanced", LABELS))


def test_topic_balance_one_half_is_the_square_root_of_the_balanced_weights():
    assert np.allclose(balanced_weights(LABELS, 0.5), np.sqrt(compute_sample_weight("balanced", LABELS)))


def test_pooled_rows_count_for_their_weight_when_topics_are_balanced():
    given = np.where(np.arange(len(LABELS)) % 2 == 0, 1.0, 0.3)
    weighted = balanced_weights(LABELS, 1.0, given)
    totals = [weighted[np.equal(LABELS, topic)].sum() for topic in np.unique(LABELS)]
    assert np.allclose(totals, totals[0])
    assert np.allclose(weighted.sum(), given.sum())


def test_a_ridge_fit_with_topic_balance_1_is_the_fit_with_class_weight_balanced(skewed):
    balanced = compose("model=ridge", "model.estimator.class_weight=balanced")
    tempered = compose("model=ridge", "model.estimator.class_weight=null", "+model.topic_balance=1")
    a = fit_pipeline(balanced["features"], balanced["model"], skewed, calibrate=False)
    b = fit_pipeline(tempered["features"], tempered["model"], skewed, calibrate=False)
    assert np.allclose(a.named_steps["classifier"].coef_, b.named_steps["classifier"].coef_, atol=1e-6)
    assert a.predict(skewed["text"]).tolist() == b.predict(skewed["text"]).tolist()


def test_the_calibrated_model_that_train_fits_gets_the_same_weights(skewed):
    config = compose("model.estimator.class_weight=null", "+model.topic_balance=0.5")
    plain = fit_pipeline(config["features"], config["model"], skewed, calibrate=False)
    calibrated = fit_pipeline(config["features"], config["model"], skewed)
    inner = calibrated.named_steps["classifier"].calibrated_classifiers_[0].estimator  # fit on all rows
    unweighted = fit_pipeline(config["features"], {**config["model"], "topic_balance": 0}, skewed, calibrate=False)
    assert np.allclose(inner.coef_, plain.named_steps["classifier"].coef_)
    assert not np.allclose(inner.coef_, unweighted.named_steps["classifier"].coef_)


@pytest.mark.parametrize("value", [2, -0.5, "half"])
def test_a_topic_balance_outside_0_to_1_is_refused_with_an_example(value):
    config = compose("model.estimator.class_weight=null", f"+model.topic_balance={value}")
    with pytest.raises(ConfigError, match=r"must be a number from 0 to 1 .* model.topic_balance=0.5"):
        build_pipeline(config["features"], config["model"], smallest_topic=5)


def test_topic_balance_on_top_of_class_weight_balanced_is_refused_naming_the_fix():
    config = compose("+model.topic_balance=0.5")  # linearsvc's own default is class_weight=balanced
    with pytest.raises(ConfigError, match=r"both weigh rare topics up; .* model.estimator.class_weight=null"):
        build_pipeline(config["features"], config["model"], smallest_topic=5)
