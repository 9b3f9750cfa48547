"""Agreement between model and human codes: Cohen's kappa as scikit-learn computes it, Krippendorff's alpha
as the krippendorff package computes it, seeded bootstrap intervals, and clear results on degenerate input."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score

from policy_topics.errors import ConfigError
from policy_topics.evaluation.agreement import (
    RESAMPLES,
    agreement,
    agreement_metrics,
    agreements,
    on_predictions,
    resamples_setting,
)

DEMO = pd.read_csv("data/demo/cap_demo.csv")["major"].to_numpy()


def noisy_codes(human: np.ndarray, error_rate: float, seed: int) -> np.ndarray:
    """A second coder who agrees except on a seeded share of documents, where it picks any code."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(human)) < error_rate
    return np.where(wrong, rng.choice(np.unique(human), len(human)), human)


def package_alpha(human: np.ndarray, model: np.ndarray) -> float:
    return krippendorff.alpha(reliability_data=np.vstack([human, model]).astype(float),
                              level_of_measurement="nominal")


def test_kappa_equals_scikit_learns_cohen_kappa_score_on_the_demo_codes():
    model = noisy_codes(DEMO, 0.3, seed=1)
    assert agreement(DEMO, model, "kappa").value == pytest.approx(cohen_kappa_score(DEMO, model), abs=1e-12)


def test_alpha_equals_the_krippendorff_packages_nominal_alpha_on_the_demo_codes():
    model = noisy_codes(DEMO, 0.3, seed=1)
    assert agreement(DEMO, model, "alpha").value == pytest.approx(package_alpha(DEMO, model), abs=1e-12)


def test_on_skewed_codes_kappa_and_alpha_are_far_below_the_accuracy():
    # 95% of documents in one topic and a coder that always says that topic: 95% accurate, no agreement
    # beyond chance.
    human = np.array([1] * 95 + [2, 3, 4, 5, 6])
    model = np.ones(100, dtype=int)
    both = agreements(human, model, resamples=50)
    assert accuracy_score(human, model) == 0.95
    assert both["kappa"].value == pytest.approx(cohen_kappa_score(human, model))
    assert both["alpha"].value == pytest.approx(package_alpha(human, model))
    assert both["kappa"].value < 0.5 and both["alpha"].value < 0.5


def test_codes_given_as_strings_give_the_same_values():
    model = noisy_codes(DEMO, 0.2, seed=2)
    as_numbers = agreements(DEMO, model, resamples=0)
    as_text = agreements(DEMO.astype(str), model.astype(str), resamples=0)
    assert {s: r.value for s, r in as_text.items()} == pytest.approx({s: r.value for s, r in as_numbers.items()})


@pytest.mark.parametrize("statistic", ["kappa", "alpha"])
def test_the_interval_contains_the_value_and_shrinks_as_documents_grow(statistic):
    rng = np.random.default_rng(0)
    human = rng.choice(np.arange(1, 11), 4000)
    model = noisy_codes(human, 0.25, seed=4)
    small = agreement(human[:200], model[:200], statistic, resamples=200, seed=0)
    large = agreement(human, model, statistic, resamples=200, seed=0)
    for result in (small, large):
        assert result.low < result.value < result.high
    assert (large.high - large.low) < 0.5 * (small.high - small.low)
    assert (small.n, large.n) == (200, 4000)


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    model = noisy_codes(DEMO, 0.3, seed=1)
    first, again, other = (agreement(DEMO, model, "alpha", resamples=100, seed=s) for s in (7, 7, 8))
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)


def test_one_code_in_both_codings_gives_nan_with_a_reason_not_an_error():
    result = agreements(np.full(10, 3), np.full(10, 3), resamples=20)
    for statistic in ("kappa", "alpha"):
        assert np.isnan(result[statistic].value) and "one code only" in result[statistic].reason
        assert result[statistic].describe().startswith("n/a (one code only")


def test_fewer_than_two_documents_give_nan_with_a_reason():
    for human, model in (([], []), ([4], [4])):
        result = agreement(np.array(human), np.array(model), "kappa")
        assert np.isnan(result.value) and "at least 2 needed" in result.reason and result.n == len(human)


def test_too_few_documents_for_an_interval_keep_the_value_and_say_why():
    # Two documents: most resamples repeat one of them (one code only), so no interval can be drawn.
    result = agreement(np.array([1, 2]), np.array([1, 2]), "kappa", resamples=100)
    assert result.value == 1.0 and np.isnan(result.low) and "too few documents" in result.reason


def test_codes_of_different_lengths_or_an_unknown_statistic_are_refused():
    with pytest.raises(ValueError, match="one length"):
        agreement(np.array([1, 2, 3]), np.array([1, 2]), "kappa")
    with pytest.raises(ValueError, match="unknown agreement statistic 'pi'"):
        agreement(np.array([1, 2]), np.array([1, 2]), "pi")


def test_metrics_are_named_by_prefix_and_leave_undefined_values_out():
    model = noisy_codes(DEMO, 0.3, seed=1)
    metrics = agreement_metrics(agreements(DEMO, model, resamples=20), "test")
    assert set(metrics) == {f"test_{s}{b}" for s in ("kappa", "alpha") for b in ("", "_low", "_high")}
    assert agreement_metrics(agreements(np.full(5, 1), np.full(5, 1), resamples=5), "test") == {}


def test_on_predictions_measures_all_documents_and_the_share_auto_coded_at_the_threshold():
    model = noisy_codes(DEMO, 0.3, seed=1)
    confidence = np.where(model == DEMO, 0.9, 0.4)  # a model sure exactly where it is right
    found = on_predictions(DEMO, model, confidence, 0.5, "test", "test split", resamples=20)
    coded = confidence >= 0.5
    assert found.overall["kappa"].value == pytest.approx(cohen_kappa_score(DEMO, model))
    assert found.autocoded["kappa"].value == pytest.approx(cohen_kappa_score(DEMO[coded], model[coded])) == 1.0
    metrics = found.metrics()
    assert metrics["test_autocoded_alpha"] == 1.0 and metrics["test_autocoded_n_docs"] == coded.sum()
    assert {"test_kappa", "test_kappa_low", "test_alpha_high"} <= set(metrics)
    lines = found.lines()
    assert lines[0].startswith(f"  agreement with the given codes on the test split ({len(DEMO):,} docs): kappa "
                               f"{metrics['test_kappa']:.3f} (95% CI {metrics['test_kappa_low']:.3f}-")
    assert lines[1].startswith(f"    on the {coded.mean():.1%} auto-coded at 0.50 ({coded.sum():,} docs): kappa 1.000")
    table = found.markdown()
    assert "| Cohen's kappa | 95% CI | Krippendorff's alpha (nominal) | 95% CI |" in table[2]
    assert table[-2].startswith(f"| all documents | {len(DEMO):,} | {metrics['test_kappa']:.3f} |")


def test_without_a_threshold_there_is_no_auto_coded_share_and_the_report_says_so():
    found = on_predictions(DEMO, DEMO, np.ones(len(DEMO)), None, "oof", "out-of-fold predictions", resamples=0)
    assert found.autocoded is None and "test_autocoded_kappa" not in found.metrics()
    assert found.metrics()["oof_kappa"] == 1.0 and len(found.lines()) == 1
    assert "carries no auto-coding threshold" in found.markdown()[0]


@pytest.mark.parametrize("value", [-1, 2.5, "many", True])
def test_a_bad_number_of_resamples_is_one_config_error(value):
    with pytest.raises(ConfigError, match=r"evaluation.agreement.resamples must be a whole number >= 0"):
        resamples_setting({"agreement": {"resamples": value}})
    assert resamples_setting({}) == RESAMPLES


def test_each_bootstrap_kappa_is_scikit_learns_cohen_kappa_score_of_that_resample():
    from policy_topics.evaluation.agreement import _kappa_resamples, _Pairs

    model = noisy_codes(DEMO, 0.3, seed=1)
    pairs = _Pairs.of(DEMO, model)
    draws = np.random.default_rng(5).multinomial(len(DEMO), pairs.counts / len(DEMO), size=5)
    for draw, fast in zip(draws, _kappa_resamples(pairs, draws), strict=True):
        human, coded = (np.repeat(pairs.codes[side], draw) for side in (pairs.human, pairs.model))
        assert fast == pytest.approx(cohen_kappa_score(human, coded), abs=1e-12)


def test_each_bootstrap_alpha_is_the_packages_alpha_of_that_resample_given_document_by_document():
    from policy_topics.evaluation.agreement import _alpha_resamples, _Pairs

    for error_rate in (0.05, 0.3, 0.9):
        model = noisy_codes(DEMO, error_rate, seed=1)
        pairs = _Pairs.of(DEMO, model)
        draws = np.random.default_rng(5).multinomial(len(DEMO), pairs.counts / len(DEMO), size=5)
        for draw, fast in zip(draws, _alpha_resamples(pairs, draws), strict=True):
            human, coded = (np.repeat(pairs.codes[side], draw) for side in (pairs.human, pairs.model))
            assert fast == pytest.approx(package_alpha(human, coded), abs=1e-12)
