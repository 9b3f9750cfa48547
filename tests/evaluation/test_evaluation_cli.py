"""Cross-validation, coverage, calibration, learning curves, model cards and the evaluate command, run as a
user runs them: real processes, the real uscongress and nytimes files, a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TrainedStore, call_cli, home_with_store

pytestmark = pytest.mark.e2e

HEADLINE = ("accuracy", "macro_f1", "weighted_f1")
MEDIA_CODES = {24, 26, 27, 28, 29, 30, 31}


def client(home: Path):
    import mlflow

    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri)


def runs(home: Path, experiment: str) -> list:
    exp = client(home).get_experiment_by_name(experiment)
    return [] if exp is None else client(home).search_runs([exp.experiment_id])


def artifact(home: Path, run_id: str, path: str) -> Path:
    return Path(client(home).download_artifacts(run_id, path, str(home / "downloads" / run_id)))


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stdout + result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory, mirror, built_store):
    """5-fold CV on uscongress (word n-grams to keep it quick), with the calibration comparison."""
    home = home_with_store(tmp_path_factory.mktemp("cv-home"), built_store)
    result = call_cli(["train", "data=uscongress", "evaluation.cv_folds=5", "features=word",
                      "evaluation.compare_calibration=true"], home, mirror)
    assert result.returncode == 0, result.stderr
    (run,) = runs(home, "uscongress")
    return home, result, run


@pytest.fixture(scope="module")
def cross_domain(cv_run, mirror):
    home, _, trained = cv_run
    result = call_cli(["evaluate", "data=nytimes", "model_ref=models:/policy-topics-uscongress/1"], home, mirror)
    assert result.returncode == 0, result.stderr
    (run,) = runs(home, "nytimes")
    return home, result, run, trained


def test_five_fold_intervals_contain_every_fold_score(cv_run):
    home, _, run = cv_run
    metrics = run.data.metrics
    assert run.info.status == "FINISHED" and metrics["cv_folds"] == 5
    for name in HEADLINE:
        history = client(home).get_metric_history(run.info.run_id, f"cv_fold_{name}")
        folds = [m.value for m in sorted(history, key=lambda m: m.step)]
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3, 4, 5]
        assert metrics[f"cv_{name}_mean"] == pytest.approx(np.mean(folds))
        assert metrics[f"cv_{name}_std"] == pytest.approx(np.std(folds, ddof=1))
        assert metrics[f"cv_{name}_pi95_low"] <= min(folds) and max(folds) <= metrics[f"cv_{name}_pi95_high"]
        assert (metrics[f"cv_{name}_pi95_low"] <= metrics[f"cv_{name}_ci95_low"] < metrics[f"cv_{name}_mean"]
                < metrics[f"cv_{name}_ci95_high"] <= metrics[f"cv_{name}_pi95_high"])
    assert 0.70 < metrics["cv_macro_f1_mean"] < 0.85 and metrics["oof_n_docs"] > 4000
    folds = pd.read_csv(artifact(home, run.info.run_id, "cv/folds.csv"))
    assert folds["n_test"].sum() == metrics["oof_n_docs"] and len(folds) == 5
    per_topic = pd.read_csv(artifact(home, run.info.run_id, "cv/per_topic_f1.csv"))
    assert len(per_topic) == 20 and per_topic["support"].sum() == metrics["oof_n_docs"]
    assert (per_topic["f1_pi95_low"] <= per_topic["f1_mean"]).all()
    assert (per_topic["f1_mean"] <= per_topic["f1_pi95_high"]).all()


def test_terminal_shows_the_folds_with_both_intervals_named(cv_run):
    _, result, run = cv_run
    out = result.stdout
    assert "5-fold cross-validation (seed 42, 4,293 docs)" in out
    assert "95% CI of the mean" in out and "95% PI of one fold" in out
    assert f"{run.data.metrics['cv_macro_f1_mean']:.3f}" in out
    assert "auto-coding (out-of-fold, 5-fold CV): 90% accuracy at threshold" in out


def test_coverage_falls_as_the_threshold_rises_and_codes_everything_at_zero(cv_run):
    home, _, run = cv_run
    table = pd.read_csv(artifact(home, run.info.run_id, "coverage/coverage_oof.csv"))
    assert table["threshold"].iloc[0] == 0 and table["threshold"].iloc[-1] == 1 and len(table) == 101
    assert table["coverage"].iloc[0] == 1.0 and (np.diff(table["coverage"]) <= 0).all()
    assert table["accuracy"].iloc[0] == pytest.approx(run.data.metrics["oof_accuracy"])
    reached = table[table["accuracy"] >= 0.9]
    assert run.data.metrics["oof_threshold_at_target"] == reached["threshold"].iloc[0]
    assert run.data.metrics["oof_coverage_at_target"] == pytest.approx(reached["coverage"].iloc[0])
    assert artifact(home, run.info.run_id, "coverage/coverage_oof.png").read_bytes()[:4] == b"\x89PNG"


def test_calibration_metrics_are_in_range_before_and_after(cv_run):
    home, _, run = cv_run
    m = run.data.metrics
    for suffix in ("", "_uncalibrated", "_calibrated"):
        assert 0 <= m[f"oof_ece{suffix}"] <= 1 and 0 <= m[f"oof_brier{suffix}"] <= 2
    assert m["oof_ece"] == m["oof_ece_calibrated"]  # LinearSVC: the model is the calibrated one
    assert m["oof_ece_calibrated"] < m["oof_ece_uncalibrated"]  # softmax of SVM margins is far too flat
    reliability = pd.read_csv(artifact(home, run.info.run_id, "calibration/reliability_oof.csv"))
    assert set(reliability["variant"]) == {"uncalibrated", "calibrated (sigmoid)"}
    assert reliability.groupby("variant")["n_docs"].sum().tolist() == [m["oof_n_docs"]] * 2
    assert artifact(home, run.info.run_id, "calibration/reliability_oof.png").stat().st_size > 10_000


def test_error_tables_list_confident_mistakes_and_confused_pairs(cv_run):
    home, _, run = cv_run
    mistakes = pd.read_csv(artifact(home, run.info.run_id, "errors/confident_mistakes_oof.csv"))
    assert len(mistakes) == 50 and (mistakes["true_code"] != mistakes["predicted_code"]).all()
    assert mistakes["probability"].is_monotonic_decreasing and mistakes["text"].str.len().min() > 0
    pairs = pd.read_csv(artifact(home, run.info.run_id, "errors/confused_pairs_oof.csv"))
    assert len(pairs) == 20 and pairs["count"].is_monotonic_decreasing


def test_model_card_has_data_digest_intervals_topics_coverage_and_limits(cv_run):
    home, _, run = cv_run
    card = artifact(home, run.info.run_id, "model_card.md").read_text()
    for section in ("# Model card: models:/policy-topics-uscongress/1", "## Intended use", "## Data",
                    "## Model and configuration", "## Evaluation", "## Per topic", "## Auto-coding", "## Calibration",
                    "## Known limits"):
        assert section in card
    assert run.data.params["data.source_sha256"] in card and run.data.params["data.fingerprint"] in card
    assert "Stratified 5-fold cross-validation" in card and "| macro_f1 |" in card and "pi95" in card
    assert "| 99 | Other |" in card  # per-topic row
    per_topic = pd.read_csv(artifact(home, run.info.run_id, "cv/per_topic_f1.csv")).set_index("code")
    other = per_topic.loc[99, "support"]
    assert f"fewer than 50 training documents (their scores are noisy): 99 Other ({other} docs" in card
    assert "9 Immigration" in card.split("## Known limits")[1]  # never seen in uscongress
    agreement = card.split("## Agreement with the given codes")[1].split("## Per topic")[0]
    assert "on the out-of-fold predictions" in agreement and f"| {run.data.metrics['oof_kappa']:.3f} |" in agreement
    assert run.data.metrics["oof_autocoded_kappa"] > run.data.metrics["oof_kappa"]  # the sure share agrees more


def test_cross_domain_evaluation_reports_unseen_topics_apart(cross_domain):
    home, result, run, trained = cross_domain
    m, tags = run.data.metrics, run.data.tags
    assert tags["evaluated_run_id"] == trained.info.run_id and tags["evaluation"] == "cross-domain"
    assert tags["evaluated_model_uri"] == "models:/policy-topics-uscongress/1"
    unseen = pd.read_csv(artifact(home, run.info.run_id, "unseen_topics.csv"))
    assert set(unseen["code"]) == MEDIA_CODES
    assert m["unseen_n_docs"] == unseen["docs"].sum() and m["unseen_topics"] == 7
    assert m["shared_n_docs"] + m["unseen_n_docs"] == m["all_n_docs"] > 3000
    assert m["unseen_share"] == pytest.approx(m["unseen_n_docs"] / m["all_n_docs"])
    assert 0.1 < m["shared_macro_f1"] < m["shared_accuracy"] < 0.6  # news headlines are hard for a bill model
    assert m["all_accuracy"] < m["shared_accuracy"]
    out = result.stdout
    assert f"unseen topics: {int(m['unseen_n_docs']):,} docs ({m['unseen_share']:.1%}) in 7 topics" in out
    assert "29 Sports and Recreation" in out and f"{m['shared_macro_f1']:.3f}" in out
    per_topic = pd.read_csv(artifact(home, run.info.run_id, "per_topic.csv"))
    assert set(per_topic.loc[~per_topic["seen_in_training"], "code"]) == MEDIA_CODES
    assert "## Topics the model never saw" in artifact(home, run.info.run_id, "report.md").read_text()
    assert m["all_kappa_low"] <= m["all_kappa"] <= m["all_kappa_high"] and m["all_alpha"] < m["all_accuracy"]
    assert f"agreement with the given codes on the rows of nytimes ({int(m['all_n_docs']):,} docs): kappa " in out


def test_evaluation_metrics_are_linked_to_the_logged_model(cross_domain):
    import mlflow

    home, _, run, trained = cross_domain
    client(home)
    model_id = trained.data.tags["model_uri"].removeprefix("models:/")
    assert run.data.tags["evaluated_model_id"] == model_id
    linked = {m.key: m for m in mlflow.get_logged_model(model_id).metrics if m.run_id == run.info.run_id}
    assert linked["shared_macro_f1"].value == run.data.metrics["shared_macro_f1"]
    assert linked["shared_macro_f1"].dataset_name == "nytimes-all"


def test_a_model_fit_on_every_row_is_not_evaluated_in_sample(cv_run, mirror):
    home, _, _ = cv_run
    before = len(runs(home, "uscongress"))
    line = one_line_error(call_cli(["evaluate", "data=uscongress", "model_ref=models:/policy-topics-uscongress/1"],
                                   home, mirror))
    assert "no held-out rows are left" in line
    assert len(runs(home, "uscongress")) == before


def test_in_domain_evaluation_scores_the_test_split_like_training_did(demo_store: TrainedStore):
    home = demo_store.home
    result = call_cli(["evaluate", "data=demo", f"model_ref={demo_store.run_id}"], home)
    assert result.returncode == 0, result.stderr
    assert "in-domain: the 185 rows of the test split" in result.stdout
    run = next(r for r in runs(home, "demo") if r.data.tags.get("evaluated_run_id") == demo_store.run_id)
    trained = client(home).get_run(demo_store.run_id).data.metrics
    assert run.data.metrics["unseen_n_docs"] == 0 and run.data.metrics["shared_n_docs"] == trained["test_n_docs"]
    assert run.data.metrics["shared_macro_f1"] == pytest.approx(trained["test_macro_f1"], abs=1e-9)
    assert run.data.metrics["shared_ece"] == pytest.approx(trained["test_ece"], abs=1e-6)
    for name in ("test_kappa", "test_alpha_low", "test_autocoded_kappa", "test_autocoded_alpha_high"):
        assert run.data.metrics[name] == pytest.approx(trained[name], abs=1e-9)  # same rows, codes and resamples
    assert "## Agreement with the given codes" in artifact(home, run.info.run_id, "report.md").read_text()


def test_a_training_run_reports_coverage_calibration_errors_and_a_card_on_its_test_split(demo_store):
    home, run_id = demo_store.home, demo_store.run_id
    m = client(home).get_run(run_id).data.metrics
    table = pd.read_csv(artifact(home, run_id, "coverage/coverage_test.csv"))
    assert table["coverage"].iloc[0] == 1.0 and (np.diff(table["coverage"]) <= 0).all()
    assert 0 <= m["test_ece"] <= 1 and 0 <= m["test_brier"] <= 2 and 0 <= m["test_coverage_at_target"] <= 1
    assert len(pd.read_csv(artifact(home, run_id, "errors/confused_pairs_test.csv"))) > 0
    card = artifact(home, run_id, "model_card.md").read_text()
    assert "A single stratified train/validation/test split" in card and "| test | 185 |" in card


def test_learning_curve_reuses_the_full_fit_and_plots_mean_and_spread(home):
    result = call_cli(["train", "features=word", "tracking.log_model=false", "evaluation.learning_curve.enabled=true",
                      "evaluation.learning_curve.fractions=[0.5,1.0]", "evaluation.learning_curve.seeds=2"], home)
    assert result.returncode == 0, result.stderr
    (run,) = runs(home, "demo")
    curve = pd.read_csv(artifact(home, run.info.run_id, "learning_curve/learning_curve.csv"))
    assert curve["fraction"].tolist() == [0.5, 1.0] and curve["repetitions"].tolist() == [2, 1]
    assert curve["n_train"].iloc[0] < curve["n_train"].iloc[1] == 646
    assert curve["macro_f1_mean"].iloc[1] == pytest.approx(run.data.metrics["val_macro_f1"])
    assert curve["macro_f1_mean"].iloc[0] < curve["macro_f1_mean"].iloc[1]
    assert artifact(home, run.info.run_id, "learning_curve/learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "learning curve: " in result.stdout


def test_more_folds_than_the_smallest_topic_is_one_line_and_opens_no_store(empty_home):
    # the other bad evaluation settings are checked in test_evaluation_metrics.py, before any work
    line = one_line_error(call_cli(["train", "evaluation.cv_folds=50"], empty_home))
    assert "evaluation.cv_folds=50 is more than the smallest topic has documents" in line
    assert "lower evaluation.cv_folds to at most" in line
    assert not (empty_home / "mlruns").exists()


@pytest.mark.parametrize(("args", "phrase"), [
    (["model_ref=models:/nope/1"], "model 'models:/nope/1' not found in sqlite:///"),
    (["model_ref=topics-demo", "prep.seed=7"], "prepared differently (digest"),
    (["model_ref=topics-demo", "evaluation.cv_folds=5"], "evaluation.cv_folds applies to policy-topics train"),
], ids=["unknown model", "other split", "training option"])
def test_evaluate_refuses_what_it_cannot_score_honestly_and_logs_no_run(demo_store, args, phrase):
    home = demo_store.home
    before = len(runs(home, "demo"))
    line = one_line_error(call_cli(["evaluate", "data=demo", *args], home))
    assert phrase in line
    if "prep.seed=7" in args:
        assert "add prep.seed=42" in line
    if "models:/nope/1" in line:
        assert "registered: topics-demo" in line
    assert len(runs(home, "demo")) == before
