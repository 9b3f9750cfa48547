"""The interval-coverage benchmark (experiments/sample_coverage.py) on the demo corpus with a few seeds: its
rows are well-formed and its true figures are those of the whole held-back half."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments"))

import sample_coverage as bench  # noqa: E402


@pytest.fixture(scope="module")
def demo_held_back(tmp_path_factory):
    cfg = bench.compose(tmp_path_factory.mktemp("home"), None, "data=demo")
    return bench.held_back(cfg)


@pytest.mark.parametrize("stratified", [False, True])
def test_the_coverage_check_compares_each_interval_with_the_true_figure_of_the_held_back_half(demo_held_back,
                                                                                             stratified) -> None:
    held, proba, classes = demo_held_back
    human = held["label"].to_numpy()
    table = bench.coverage_check(human, proba, classes, seeds=2, n=80, target=0.7, stratified=stratified,
                                resamples=100)
    predicted, confidence = classes[np.argmax(proba, axis=1)], proba.max(axis=1)
    assert table["seed"].tolist() == [0, 1] and len(held) > 400
    for row in table.to_dict("records"):
        assert row["accuracy_true"] == pytest.approx(np.mean(human == predicted))
        assert row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"]
        assert row["accuracy_covered"] == (row["accuracy_low"] <= row["accuracy_true"] <= row["accuracy_high"])
        if row["threshold"] is None or np.isnan(row["threshold"]):
            assert row["advice"] and row["accuracy_at_threshold_covered"] is None
            continue
        coded = confidence >= row["threshold"]
        assert row["accuracy_at_threshold_true"] == pytest.approx(np.mean(human[coded] == predicted[coded]))
        assert row["coverage_at_threshold_true"] == pytest.approx(coded.mean())
        assert row["accuracy_at_threshold_low"] >= 0.7
        assert row["target_met"] == (row["accuracy_at_threshold_true"] >= 0.7)
    summary = bench.summarise(table)
    assert summary["seeds"] == 2 and summary["true_accuracy_reached_target"] <= summary["threshold_chosen"]
    assert all(0 <= summary[f]["covered"] <= summary[f]["of"] <= 2 for f in bench.FIGURES)
    report = bench.markdown({"data": "demo", "target_data": None, "n": 80, "target": 0.7, "held_back_docs": len(held),
                             "machine": "m", "date": "d", "seconds": 1.0, "designs": {"random": {"summary": summary}}})
    assert report.count("\n| random |") == len(bench.FIGURES)
