"""Estimates for a target corpus from a coded sample: intervals, stratum weights, and the threshold choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from policy_topics.evaluation.coverage import thresholds
from policy_topics.evaluation.target import (
    MIN_CODED,
    Design,
    bootstrap_macro_f1,
    choose_threshold,
    estimate,
    macro_f1,
    ratio,
    threshold_table,
    wilson,
)


def test_the_wilson_interval_is_scipys() -> None:
    for k, n in ((0, 10), (8, 10), (180, 200), (200, 200)):
        expected = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson(k / n, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_on_a_simple_random_sample_the_accuracy_of_the_auto_coded_share_is_wilsons_on_those_documents() -> None:
    rng = np.random.default_rng(1)
    correct, coded = rng.random(200) < 0.8, rng.random(200) < 0.6
    found = ratio(correct & coded, coded, Design.simple(200, 10_000))
    k, m = int((correct & coded).sum()), int(coded.sum())
    assert found.value == pytest.approx(k / m) and found.n == m
    assert (found.low, found.high) == pytest.approx(wilson(k / m, m))


def test_stratified_estimates_weigh_each_stratum_by_its_corpus_size() -> None:
    # stratum 1: 900 corpus documents, 10 coded (9 right); stratum 2: 100 documents, 10 coded (2 right)
    strata = np.repeat([1, 2], 10)
    correct = np.array([True] * 9 + [False] + [True] * 2 + [False] * 8)
    design = Design(strata, {1: 900, 2: 100})
    found = ratio(correct, np.ones(20), design)
    assert found.value == pytest.approx(0.9 * 0.9 + 0.1 * 0.2)
    assert np.mean(correct) == pytest.approx(0.55)  # what an unweighted mean would have said
    assert design.weights().tolist() == [90.0] * 10 + [10.0] * 10
    assert found.low < found.value < found.high


def test_a_stratified_interval_is_never_narrower_than_a_simple_random_samples_of_as_many_documents() -> None:
    strata = np.repeat([1, 2, 3, 4], 5)  # small strata whose documents all agree: their variance estimates are 0
    correct = np.array([True] * 15 + [False] * 5)
    found = ratio(correct, np.ones(20), Design(strata, {1: 100, 2: 100, 3: 100, 4: 100}))
    assert found.value == pytest.approx(0.75) and found.effective == 20
    assert (found.low, found.high) == pytest.approx(wilson(0.75, 20))


def test_a_stratified_estimate_is_unbiased_for_the_corpus_over_many_draws() -> None:
    rng = np.random.default_rng(0)
    stratum = np.repeat([1, 2, 3], [6000, 3000, 1000])
    correct = rng.random(10_000) < np.select([stratum == 1, stratum == 2], [0.95, 0.7], 0.3)
    truth = correct.mean()
    values = []
    for _ in range(300):
        rows = np.concatenate([rng.choice(np.flatnonzero(stratum == h), k, replace=False)
                               for h, k in ((1, 20), (2, 20), (3, 20))])  # equal allocation: far from proportional
        design = Design(stratum[rows], {1: 6000, 2: 3000, 3: 1000})
        values.append(ratio(correct[rows], np.ones(len(rows)), design).value)
    assert np.mean(values) == pytest.approx(truth, abs=0.01)


def test_weighted_macro_f1_is_scikit_learns_with_sample_weights() -> None:
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(1, 6, 300), rng.integers(1, 7, 300)
    y_pred[:150] = y_true[:150]
    weights = rng.uniform(0.5, 3, 300)
    expected = f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", sample_weight=weights,
                        zero_division=0)
    assert macro_f1(y_true, y_pred, weights) == pytest.approx(expected)


def test_the_macro_f1_interval_is_seeded() -> None:
    rng = np.random.default_rng(4)
    y_true = rng.integers(1, 5, 120)
    y_pred = np.where(rng.random(120) < 0.7, y_true, rng.integers(1, 5, 120))
    design = Design.simple(120, 5000)
    first, again = (bootstrap_macro_f1(y_true, y_pred, design, 200, seed=7) for _ in range(2))
    other = bootstrap_macro_f1(y_true, y_pred, design, 200, seed=8)
    assert first == again and (first.low, first.high) != (other.low, other.high)
    assert first.low < first.value < first.high


def _table(accuracy: list[float], n_coded: list[int], low: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"threshold": np.linspace(0, 0.9, len(accuracy)), "n_coded": n_coded,
                         "accuracy": accuracy, "accuracy_low": low, "effective_n": n_coded,
                         "coverage": np.array(n_coded) / 200})


def test_the_threshold_is_the_lowest_whose_lower_bound_reaches_the_target_not_its_point_estimate() -> None:
    table = _table([0.85, 0.91, 0.94, 0.97], [200, 150, 120, 60], [0.80, 0.86, 0.905, 0.90])
    choice = choose_threshold(table, 0.9, 200)
    assert choice.threshold == pytest.approx(table["threshold"][2])  # 0.91 is over the target, its bound is not


def test_a_threshold_resting_on_too_few_coded_documents_is_not_chosen() -> None:
    table = _table([0.85, 1.0], [200, MIN_CODED - 1], [0.80, 0.93])
    choice = choose_threshold(table, 0.9, 200)
    assert choice.threshold is None and "code about" in choice.advice


def test_too_few_coded_documents_say_how_many_more_to_code_and_that_many_would_do() -> None:
    rng = np.random.default_rng(5)
    confidence = rng.random(60)
    correct = rng.random(60) < np.where(confidence > 0.5, 0.96, 0.6)
    grid = thresholds(0.1)
    table = threshold_table(correct, confidence, Design.simple(60, 10_000), grid)
    choice = choose_threshold(table, 0.9, 60)
    assert choice.threshold is None
    more = int(choice.advice.split("code about ")[1].split()[0])
    # the same sample, grown by that many documents of the same make-up, establishes a threshold
    factor = int(np.ceil((60 + more) / 60))
    grown = threshold_table(np.tile(correct, factor), np.tile(confidence, factor),
                            Design.simple(60 * factor, 10_000), grid)
    assert choose_threshold(grown, 0.9, 60 * factor).threshold is not None


def test_a_target_out_of_reach_says_coding_more_will_not_find_one() -> None:
    table = _table([0.5, 0.6, 0.7], [200, 100, 50], [0.43, 0.5, 0.56])
    assert "coding more is not likely to establish one" in choose_threshold(table, 0.9, 200).advice


def test_advice_to_code_more_documents_than_the_corpus_has_left_says_so() -> None:
    table = _table([0.6, 0.92], [200, 25], [0.53, 0.75])
    assert "code about" in choose_threshold(table, 0.9, 200).advice
    advice = choose_threshold(table, 0.9, 200, corpus_size=1000).advice
    assert advice.startswith("no threshold can be established for 90% accuracy on this corpus by coding more: it "
                             "would take about") and "and 800 are left" in advice


def test_a_perfect_accuracy_on_a_handful_of_documents_is_not_extrapolated_from() -> None:
    table = _table([0.6, 0.7, 1.0], [200, 100, 3], [0.53, 0.6, 0.44])
    advice = choose_threshold(table, 0.9, 200).advice
    assert advice.startswith("no threshold reaches 90% accuracy on 10 coded documents or more (the best: 0.700")


def test_the_estimates_of_a_sample_hold_intervals_a_threshold_and_agreement() -> None:
    rng = np.random.default_rng(6)
    human = rng.integers(1, 6, 200)
    confidence = rng.random(200)
    predicted = np.where(rng.random(200) < np.where(confidence > 0.4, 0.98, 0.5), human, (human % 5) + 1)
    found = estimate(human, predicted, confidence, Design.simple(200, 20_000), thresholds(0.01), 0.9, seed=0)
    metrics = found.metrics()
    assert metrics["sample_accuracy"] == pytest.approx(np.mean(human == predicted))
    assert metrics["sample_accuracy_low"] < metrics["sample_accuracy"] < metrics["sample_accuracy_high"]
    assert metrics["sample_accuracy_low_at_threshold"] >= 0.9 and metrics["sample_n_coded_at_threshold"] >= MIN_CODED
    assert {"sample_kappa", "sample_alpha", "sample_auto_kappa", "sample_auto_alpha"} <= set(metrics)
    assert len(found.table) == 101 and found.table["coverage"].is_monotonic_decreasing
