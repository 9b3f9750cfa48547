"""The evaluation helpers on small arrays whose answers can be checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from policy_topics.errors import ConfigError
from policy_topics.evaluation.calibration import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    reliability_table,
)
from policy_topics.evaluation.coverage import coverage_table, operating_point, thresholds
from policy_topics.evaluation.crossval import fold_indices, interval
from policy_topics.evaluation.error_analysis import confident_mistakes, confused_pairs
from policy_topics.evaluation.learning_curve import Repetition, learning_curve, stratified_subsample
from policy_topics.evaluation.metrics import score
from policy_topics.jobs.analysis import EvaluationOptions


def test_intervals_of_one_to_five_follow_the_t_distribution():
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.7764: CI half-width 2.7764 * s / sqrt(5) = 1.9632,
    # prediction half-width 2.7764 * s * sqrt(1 + 1/5) = 4.8089
    iv = interval([1, 2, 3, 4, 5], bounds=None)
    assert iv.n == 5 and iv.mean == 3 and iv.std == pytest.approx(math.sqrt(2.5))
    assert (iv.ci95_low, iv.ci95_high) == pytest.approx((3 - 1.9632, 3 + 1.9632), abs=1e-4)
    assert (iv.pi95_low, iv.pi95_high) == pytest.approx((3 - 4.8089, 3 + 4.8089), abs=1e-4)


def test_score_intervals_are_clipped_to_zero_one_and_contain_every_fold():
    folds = [0.97, 0.99, 1.0, 0.93, 0.95]
    iv = interval(folds)
    assert iv.pi95_high == 1.0 and iv.ci95_high <= 1.0
    assert iv.pi95_low <= min(folds) and max(folds) <= iv.pi95_high
    assert iv.pi95_low < iv.ci95_low < iv.mean < iv.ci95_high <= iv.pi95_high
    with pytest.raises(ValueError, match="at least two"):
        interval([0.8])


def test_ece_is_the_weighted_gap_between_confidence_and_accuracy():
    # bin 0.9: confidence 0.9, accuracy 0.5 (gap 0.4); bin 0.6: confidence 0.6, accuracy 1.0 (gap 0.4)
    confidence = np.array([0.9, 0.9, 0.6, 0.6])
    correct = np.array([True, False, True, True])
    assert expected_calibration_error(confidence, correct, bins=10) == pytest.approx(0.4)
    table = reliability_table(confidence, correct, bins=10)
    assert table["n_docs"].tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 0, 2]
    assert table.loc[9, "accuracy"] == 0.5 and table.loc[6, "mean_confidence"] == pytest.approx(0.6)
    assert expected_calibration_error(np.array([1.0, 0.5]), np.array([True, False]), bins=1) == pytest.approx(0.25)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True]), bins=10) == 0.0


def test_brier_score_sums_squared_errors_over_topics():
    proba = np.array([[1.0, 0.0], [0.5, 0.5]])
    classes = np.array([3, 7])
    assert brier_score(np.array([3, 7]), proba, classes) == pytest.approx((0 + 0.5) / 2)
    assert brier_score(np.array([7, 3]), proba, classes) == pytest.approx((2 + 0.5) / 2)
    # a topic the model has no column for: it was given 0, so it adds 1 to the sum of p^2
    assert brier_score(np.array([29]), np.array([[0.6, 0.4]]), classes) == pytest.approx(0.36 + 0.16 + 1)
    metrics = calibration_metrics(np.array([3, 7]), proba, classes, bins=10)
    assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["brier"] <= 2


def test_coverage_falls_with_the_threshold_and_accuracy_is_on_the_coded_documents():
    confidence = np.array([0.9, 0.8, 0.4, 0.2])
    correct = np.array([True, True, False, True])
    table = coverage_table(confidence, correct, np.array([0.0, 0.5, 0.85, 1.0]))
    assert table["coverage"].tolist() == [1.0, 0.5, 0.25, 0.0]
    assert table["n_coded"].tolist() == [4, 2, 1, 0]
    assert table["accuracy"].tolist()[:3] == [0.75, 1.0, 1.0] and np.isnan(table["accuracy"].iloc[3])
    point = operating_point(table, 0.9)
    assert (point.threshold, point.coverage, point.n_coded, point.accuracy) == (0.5, 0.5, 2, 1.0)
    assert "50.0% of documents (2) auto-coded" in point.describe()
    unreachable = operating_point(coverage_table(confidence, ~correct | (confidence < 0.5), np.array([0.0, 0.5])), 0.99)
    assert unreachable.threshold is None and "not reachable" in unreachable.describe()


def test_threshold_grid_runs_from_zero_to_one():
    assert thresholds(0.25).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    grid = thresholds(0.01)
    assert len(grid) == 101 and grid[0] == 0 and grid[-1] == 1 and np.all(np.diff(grid) > 0)
    assert thresholds(0.3).tolist() == [0.0, 0.3, 0.6, 0.9, 1.0]


def test_unseen_topics_count_as_errors_and_get_a_row():
    classes = np.array([1, 2])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    ev = score(np.array([1, 2, 29, 2]), proba, classes, "all", ["a", "b", "c", "d"])
    assert ev.metrics["accuracy"] == 0.75
    assert ev.per_topic.loc[29, "f1"] == 0 and ev.per_topic.loc[29, "support"] == 1
    shared = ev.subset(np.isin(ev.y_true, classes), "shared")
    assert shared.metrics["accuracy"] == 1.0 and shared.metrics["n_docs"] == 3 and shared.texts == ["a", "b", "d"]


def test_error_tables_rank_confident_mistakes_and_confused_pairs():
    classes = np.array([1, 2, 3])
    proba = np.array([[0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [0.05, 0.9, 0.05], [0.8, 0.1, 0.1], [0.1, 0.2, 0.7]])
    ev = score(np.array([1, 1, 2, 3, 29]), proba, classes, "test", ["a", "b", "c", "d", "e"])
    mistakes = confident_mistakes(ev, top=3)
    assert mistakes["text"].tolist() == ["d", "a", "e"]  # probabilities 0.8, 0.7, 0.7 (stable order)
    assert mistakes.loc[0, "predicted_topic"] == "Macroeconomics" and mistakes.loc[0, "true_code"] == 3
    assert mistakes.loc[1, "probability_of_true_topic"] == pytest.approx(0.2)
    assert not mistakes.loc[2, "true_topic_seen_in_training"] and mistakes.loc[2, "probability_of_true_topic"] == 0
    pairs = confused_pairs(ev, top=5)
    first = pairs.iloc[0]
    assert (first["true_code"], first["predicted_code"], first["count"], first["share_of_true_topic"]) == (1, 2, 2, 1.0)
    assert pairs["count"].sum() == 4 and list(pairs.columns[:4]) == ["true_code", "true_topic", "predicted_code",
                                                                      "predicted_topic"]


def test_stratified_subsample_keeps_every_topic():
    frame = pd.DataFrame({"text": [str(i) for i in range(110)], "label": [1] * 100 + [2] * 10})
    sample = stratified_subsample(frame, 0.1, seed=0)
    assert sample["label"].value_counts().to_dict() == {1: 10, 2: 2}  # at least two of the small topic
    assert stratified_subsample(frame, 0.1, seed=0).equals(sample)
    assert not stratified_subsample(frame, 0.1, seed=1).equals(sample)
    assert stratified_subsample(frame, 1.0, seed=0) is frame


def test_learning_curve_fits_each_fraction_per_repetition_and_the_whole_part_once():
    frame = pd.DataFrame({"text": [str(i) for i in range(40)], "label": [1, 2] * 20})
    calls: list[int] = []

    def fit_score(train: pd.DataFrame, held_out: pd.DataFrame) -> float:
        calls.append(len(train))
        return len(train) / 100

    reps = [Repetition(f"seed {s}", frame, frame, s) for s in (1, 2, 3)]
    curve = learning_curve(reps, [0.5, 1.0], fit_score)
    assert calls == [20, 20, 20, 40]
    assert curve.groupby("fraction").size().to_dict() == {0.5: 3, 1.0: 1}
    known = [Repetition("fold 1", frame, frame, 1, full_score=0.77)]
    assert learning_curve(known, [1.0], fit_score)["macro_f1"].tolist() == [0.77] and len(calls) == 4


def test_cv_folds_are_stratified_and_seeded():
    labels = np.array([1] * 10 + [2] * 5)
    folds = fold_indices(labels, 5, seed=3)
    assert len(folds) == 5 and all(sorted(labels[test].tolist()) == [1, 1, 2] for _, test in folds)
    assert np.array_equal(np.sort(np.concatenate([test for _, test in folds])), np.arange(15))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, fold_indices(labels, 5, seed=3), strict=True))


@pytest.mark.parametrize(("settings", "phrase"), [
    ({"target_accuracy": 1.5}, "evaluation.target_accuracy=1.5 must be in (0, 1]"),
    ({"target_accuracy": 0}, "evaluation.target_accuracy=0.0 must be in (0, 1]"),
    ({"cv_folds": 1}, "evaluation.cv_folds=1: use 0 (train/validation/test) or a number of folds >= 2"),
    ({"cv_folds": 2.5}, "evaluation.cv_folds must be an integer, not 2.5"),
    ({"threshold_step": 0}, "evaluation.threshold_step=0.0 must be in (0, 0.5]"),
    ({"calibration_bins": 0}, "evaluation.calibration_bins must be at least 1"),
    ({"learning_curve": {"fractions": [0.5, 2]}}, "evaluation.learning_curve.fractions=[0.5, 2.0] must be fractions"),
    ({"learning_curve": {"seeds": 0}}, "evaluation.learning_curve.seeds must be at least 1"),
])
def test_bad_evaluation_settings_are_one_line_errors(settings, phrase):
    with pytest.raises(ConfigError) as info:
        EvaluationOptions.from_config(settings)
    assert phrase in str(info.value) and "\n" not in str(info.value)


def test_more_folds_than_the_smallest_topic_has_documents_is_refused():
    options = EvaluationOptions.from_config({"cv_folds": 5})
    options.check_folds(pd.Series([1] * 10 + [2] * 5))
    with pytest.raises(ConfigError, match=r"evaluation.cv_folds=5 is more than the smallest topic has documents "
                                          r"\(2 Civil Rights: 4\); lower evaluation.cv_folds to at most 4"):
        options.check_folds(pd.Series([1] * 10 + [2] * 4))


def test_calibration_can_be_forced_on_or_off_for_the_before_after_comparison():
    from conftest import REPO
    from omegaconf import OmegaConf
    from sklearn.calibration import CalibratedClassifierCV

    from policy_topics.models.pipeline import build_pipeline, fit_pipeline, is_calibrated, probabilities

    def model(name: str) -> dict:
        merged = OmegaConf.merge({"seed": 0}, {"x": OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml")})
        return OmegaConf.to_container(merged, resolve=True)["x"]

    words = {"word": {"ngram_range": [1, 1]}}
    logreg = model("logreg")
    assert not is_calibrated(build_pipeline(words, logreg, 20))
    logreg["calibration"]["always"] = True
    assert isinstance(build_pipeline(words, logreg, 20).named_steps["classifier"], CalibratedClassifierCV)
    demo = pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv").rename(columns={"major": "label"})
    raw = fit_pipeline(words, model("linearsvc"), demo, calibrate=False)
    assert not hasattr(raw, "predict_proba") and not is_calibrated(raw)
    proba = probabilities(raw, demo["text"].head(5).tolist())  # softmax of the margins
    assert proba.shape == (5, 21) and np.allclose(proba.sum(axis=1), 1)
    assert (proba.argmax(axis=1) == raw.decision_function(demo["text"].head(5).tolist()).argmax(axis=1)).all()
