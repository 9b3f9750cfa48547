"""The model measured on a target corpus through a coded sample, as a user runs it: a stratified sample of the
demo corpus coded with its own labels, ``policy-topics evaluate coded_sample=...`` logging a real MLflow run,
and predict taking that run's threshold."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TrainedStore, call_cli, store_client

from policy_topics.evaluation.target import MIN_CODED

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "cap_demo.csv"
TARGET = 0.95


def _code(sheet: Path, rows: int | None = None) -> list[dict[str, str]]:
    """Fill the sheet's code column with the demo corpus's own labels (the first ``rows`` rows only)."""
    labels = dict(pd.read_csv(DEMO)[["text", "major"]].itertuples(index=False))
    with open(sheet, encoding="utf-8-sig", newline="") as handle:
        coded = list(csv.DictReader(handle))
    for row in coded[:rows]:
        row["code"] = str(labels[row["text"]])
    _save(sheet, coded[:rows])
    return coded[:rows]


def _save(sheet: Path, rows: list[dict[str, str]]) -> None:
    with open(sheet, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory, demo_store: TrainedStore) -> TrainedStore:
    """A copy of the demo store, so the evaluation runs logged here stay out of the shared one."""
    home = tmp_path_factory.mktemp("target-home")
    shutil.copytree(demo_store.home / "mlruns", home / "mlruns")
    return TrainedStore(home, demo_store.run_id, demo_store.model_uri, demo_store.registered)


@pytest.fixture(scope="module")
def sampled(store: TrainedStore, tmp_path_factory):
    path = tmp_path_factory.mktemp("sheets") / "sample.csv"
    result = call_cli(["sample", "--input", str(DEMO), "--n", "200", "--stratify", "--model", store.registered,
                       "--show-guesses", "--output", str(path)], store.home)
    assert result.returncode == 0, result.stderr
    return path, result


@pytest.fixture(scope="module")
def sheet(sampled) -> Path:
    path, _ = sampled
    _code(path)
    return path


def test_sample_writes_a_stratified_sheet_with_the_models_guesses_and_says_what_it_drew(sampled) -> None:
    path, result = sampled
    assert result.stderr.splitlines()[0] == "200 of 924 documents sampled stratified over 21 predicted topics"
    manifest = json.loads(path.with_name("sample.manifest.json").read_text())
    assert manifest["design"] == "stratified" and manifest["model"] == "models:/topics-demo/1"
    assert sum(s["size"] for s in manifest["strata"].values()) == 924
    assert sum(s["sampled"] for s in manifest["strata"].values()) == 200 == len(manifest["stratum_of"])
    sheet = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False)
    assert list(sheet.columns) == ["id", "text", "code", *(f"guess_{k}{part}" for k in (1, 2, 3)
                                                           for part in ("", "_topic", "_probability"))]
    # the best guess is the predicted topic each document was stratified by
    assert sheet["guess_1"].tolist() == [manifest["stratum_of"][i] for i in sheet["id"]]
    assert (sheet["guess_1_probability"] >= sheet["guess_2_probability"]).all()


def test_a_sample_larger_than_the_corpus_is_one_line(store, tmp_path) -> None:
    result = call_cli(["sample", "--input", str(DEMO), "--n", "1000", "--output", str(tmp_path / "s.csv")],
                      store.home)
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: --n 1000 is more than the 924 documents of cap_demo.csv; ask for at most --n 924")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def evaluated(store: TrainedStore, sheet: Path):
    result = call_cli(["evaluate", f"model_ref={store.registered}", f"coded_sample={sheet}",
                       f"evaluation.target_accuracy={TARGET}"], store.home)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.split("run id", 1)[1].split()[0]
    return result, store_client(store.home).get_run(run_id)


def _runs(store: TrainedStore) -> int:
    client = store_client(store.home)
    return len(client.search_runs([e.experiment_id for e in client.search_experiments()]))


def test_evaluate_on_a_coded_sample_gives_intervals_and_a_threshold(evaluated, store: TrainedStore) -> None:
    result, run = evaluated
    metrics, tags = run.data.metrics, run.data.tags
    assert tags["evaluation"] == "coded-sample" and tags["evaluated_run_id"] == store.run_id
    assert run.info.experiment_id == store_client(store.home).get_run(store.run_id).info.experiment_id
    for name in ("accuracy", "macro_f1", "kappa", "alpha"):
        assert metrics[f"sample_{name}_low"] <= metrics[f"sample_{name}"] <= metrics[f"sample_{name}_high"]
    assert metrics["sample_accuracy_low_at_threshold"] >= TARGET
    assert metrics["sample_n_coded_at_threshold"] >= MIN_CODED and "sample_auto_kappa" in metrics
    assert f"threshold {metrics['sample_threshold']:.2f} for 95% accuracy" in result.stdout


def test_the_threshold_table_is_logged_and_no_lower_threshold_meets_the_rule(evaluated, store, tmp_path) -> None:
    _, run = evaluated
    folder = store_client(store.home).download_artifacts(run.info.run_id, "", str(tmp_path))
    table = pd.read_csv(Path(folder) / "threshold_table.csv")
    assert len(table) == 101 and {"coverage_low", "accuracy_low", "accuracy_high"} <= set(table.columns)
    chosen = run.data.metrics["sample_threshold"]
    below = table[table["threshold"] < chosen - 1e-9]
    assert not ((below["accuracy_low"] >= TARGET) & (below["n_coded"] >= MIN_CODED)).any()
    predictions = pd.read_csv(Path(folder) / "coded_sample_predictions.csv")
    assert len(predictions) == 200 and np.isclose(predictions["weight"].sum(), 924, atol=0.1)
    assert "# Coded sample" in (Path(folder) / "report.md").read_text()


def test_too_few_coded_documents_say_how_many_more_to_code_and_log_no_run(store, sheet, tmp_path) -> None:
    few = tmp_path / "few.csv"
    shutil.copy(sheet, few)
    shutil.copy(sheet.with_name("sample.manifest.json"), tmp_path / "few.manifest.json")
    rows = _code(few, 12)
    assert len(rows) == 12
    before = _runs(store)
    result = call_cli(["evaluate", f"model_ref={store.registered}", f"coded_sample={few}"], store.home)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0] == (f"error: only 12 documents of few.csv are coded; the intervals need at least {MIN_CODED}: "
                        f"code {MIN_CODED - 12} more")
    assert _runs(store) == before


# Every kind of bad sheet is refused by read_coded_sheet (tests/data/test_sheets.py); here, through the command,
# that the refusal is one line and comes before the run opens.
@pytest.mark.parametrize(("change", "says"), [
    (lambda rows: rows.append(dict(rows[0])), "repeated ids"),
    (lambda rows: rows[1].update(code="Helth"), "unknown codes"),
    (lambda rows: [row.update(topic=row.pop("code")) for row in rows], "lacks the column(s) code"),
])
def test_a_bad_coded_sheet_is_one_line_and_logs_no_run(store, sheet, tmp_path, change, says) -> None:
    bad = tmp_path / "bad.csv"
    shutil.copy(sheet.with_name("sample.manifest.json"), tmp_path / "bad.manifest.json")
    with open(sheet, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    change(rows)
    _save(bad, rows)
    before = _runs(store)
    result = call_cli(["evaluate", f"model_ref={store.registered}", f"coded_sample={bad}"], store.home)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stdout, result.stderr
    assert lines[0].startswith("error: bad.csv") and says in lines[0]
    assert _runs(store) == before


def test_predict_with_threshold_from_uses_the_evaluations_threshold_and_its_model(evaluated, store) -> None:
    _, run = evaluated
    threshold = run.data.metrics["sample_threshold"]
    texts = pd.read_csv(DEMO)["text"].head(40).tolist()
    result = call_cli(["predict", "--threshold-from", run.info.run_id, *texts], store.home)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 40
    assert all((r["status"] == "coded") == (r["probability"] >= threshold) for r in records)
    assert f"40 predictions from {store.registered};" in result.stderr  # the model the evaluation measured
    assert f"coded = probability >= {threshold:.2f}, chosen by evaluation run {run.info.run_id}" in result.stderr


def test_threshold_from_takes_the_same_model_by_another_name_and_refuses_a_run_of_another_kind(evaluated,
                                                                                              store) -> None:
    _, run = evaluated
    result = call_cli(["predict", "--threshold-from", run.info.run_id, "--model", store.model_uri, "a text"],
                      store.home)
    assert result.returncode == 0, result.stderr  # the same model under its logged-model URI
    for command in ("predict", "serve"):
        other = call_cli([command, "--threshold-from", store.run_id, "a text"][: 3 if command == "serve" else 4],
                         store.home)
        assert other.returncode == 2 and other.stderr.strip() == (
            f"error: run {store.run_id} is no evaluation on a coded sample; give the run id of policy-topics "
            "evaluate model_ref=MODEL coded_sample=SHEET.csv")


def _evaluation_run(store: TrainedStore, tags: dict[str, str], metrics: dict[str, float]) -> str:
    """A coded-sample evaluation run written straight into the store (for the refusals of --threshold-from)."""
    client = store_client(store.home)
    experiment = client.get_run(store.run_id).info.experiment_id
    run = client.create_run(experiment, tags={"evaluation": "coded-sample", **tags})
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.log_param(run.info.run_id, "evaluation.target_accuracy", "0.9")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_threshold_from_an_evaluation_of_another_model_or_without_a_threshold_is_refused(store) -> None:
    figures = {"sample_threshold": 0.6, "sample_accuracy_at_threshold": 0.95, "sample_accuracy_low_at_threshold": 0.91,
               "sample_accuracy_high_at_threshold": 0.98, "sample_coverage_at_threshold": 0.4}
    other = _evaluation_run(store, {"evaluated_run_id": "0" * 32, "evaluated_model_uri": "models:/someone-else/1"},
                            figures)
    result = call_cli(["predict", "--threshold-from", other, "--model", store.registered, "a text"], store.home)
    assert result.returncode == 2 and result.stderr.strip() == (
        f"error: evaluation run {other} chose its threshold for models:/someone-else/1, not for {store.registered}; "
        "drop --model to use that model, or evaluate this one on the coded sample")
    none = _evaluation_run(store, {"evaluated_run_id": store.run_id, "evaluated_model_uri": store.registered}, {})
    result = call_cli(["predict", "--threshold-from", none, "a text"], store.home)
    assert result.returncode == 2 and result.stderr.strip().startswith(
        f"error: evaluation run {none} established no threshold (too few coded documents or a target out of reach)")


def test_a_coded_sample_with_a_dataset_config_as_well_is_refused(store, sheet) -> None:
    before = _runs(store)
    result = call_cli(["evaluate", f"model_ref={store.registered}", f"coded_sample={sheet}", "data=demo"], store.home)
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: coded_sample= measures the model on the coded sheet, not on a dataset config: drop data=...")
    assert _runs(store) == before
