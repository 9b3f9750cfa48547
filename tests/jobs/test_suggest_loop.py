"""People in the loop, as a user runs it: ``policy-topics suggest`` writes a coder sheet from the demo model, the
coded sheet goes back with ``data.extra_coded`` into a new training run that records where it came from (the
sheet's path and sha256, a new data fingerprint, ``loop.round`` and ``loop.parent_run``), and a bad sheet leaves no
run behind."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import TrainedStore, call_cli, store_client

from policy_topics.data.sheets import manifest_path
from policy_topics.models.active import distinct_rows

pytestmark = pytest.mark.e2e

# A corpus the demo model has not seen, written for this test: short council and agency notices.
SUBJECTS = ("school lunch subsidies", "the county hospital's night shift", "tariffs on imported steel",
            "wildfire crews in the national forest", "a new light rail line", "police body cameras",
            "the veterans' pension backlog", "flood insurance premiums", "broadband grants for farms",
            "the embassy's visa office")
OPENINGS = ("The council voted to expand", "Lawmakers questioned the cost of", "The agency proposed rules for")
CORPUS = [f"{opening} {subject}." for opening in OPENINGS for subject in SUBJECTS]
# The same notices again, differently typed: suggest never puts two of these on one sheet.
COPIES = ["THE COUNCIL VOTED TO EXPAND  school lunch subsidies.", "the council voted to expand school lunch subsidies."]


def _rows(sheet: Path) -> list[dict[str, str]]:
    with open(sheet, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _code(sheet: Path, code: str | None = None) -> list[dict[str, str]]:
    """Code every row with the model's first guess (or ``code``), as a coder accepting the suggestion would."""
    rows = _rows(sheet)
    for row in rows:
        row["code"] = code or row["guess_1"]
    with open(sheet, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory, demo_store: TrainedStore) -> TrainedStore:
    """A copy of the demo home (store and prepared splits), so the runs logged here stay out of the shared one."""
    home = tmp_path_factory.mktemp("loop") / "home"
    shutil.copytree(demo_store.home, home)
    return TrainedStore(home, demo_store.run_id, demo_store.model_uri, demo_store.registered)


@pytest.fixture(scope="module")
def corpus(store: TrainedStore) -> Path:
    path = store.home / "notices.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["notice", "text"])
        writer.writerows([f"n{i}", text] for i, text in enumerate([*COPIES, *CORPUS]))
    return path


@pytest.fixture(scope="module")
def sheet(store: TrainedStore, corpus: Path) -> Path:
    path = store.home / "round1.csv"
    result = call_cli(["suggest", "--model", store.registered, "--input", str(corpus), "--id-column", "notice",
                       "--n", "12", "--seed", "0", "--output", str(path)], store.home)
    assert result.returncode == 0, result.stderr
    assert "12 of 30 documents suggested" in result.stderr  # 32 rows: the two copies and their original once
    return path


def test_suggest_writes_a_coder_sheet_with_the_models_guesses_and_never_two_copies_of_a_text(store, sheet):
    rows = _rows(sheet)
    assert len(rows) == 12 and all(row["code"] == "" for row in rows)
    assert list(rows[0])[:6] == ["id", "text", "code", "guess_1", "guess_1_topic", "guess_1_probability"]
    assert "guess_3_probability" in rows[0]
    texts = [row["text"] for row in rows]
    assert len(distinct_rows(texts)) == len(texts)
    probabilities = [float(row["guess_1_probability"]) for row in rows]
    assert all(float(row["guess_1_probability"]) >= float(row["guess_2_probability"]) for row in rows)
    assert max(probabilities) < 1
    manifest = json.loads(manifest_path(sheet).read_text(encoding="utf-8"))
    assert manifest["kind"] == "suggest" and manifest["model_run_id"] == store.run_id and manifest["seed"] == 0
    assert set(manifest["texts"]) == {row["id"] for row in rows}


def test_a_suggestion_larger_than_the_pool_is_one_line_and_writes_nothing(store, corpus, tmp_path):
    out = tmp_path / "too_many.csv"
    result = call_cli(["suggest", "--model", store.registered, "--input", str(corpus), "--n", "40",
                       "--output", str(out)], store.home)
    assert result.returncode == 2
    assert "--n 40 is more than the 30 documents there are to suggest" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_coded_sheet_trains_a_new_run_with_its_provenance_round_and_parent(store, sheet, corpus, tmp_path):
    coded = _code(sheet)
    result = call_cli(["train", f"data.extra_coded=[{sheet}]", "tracking.experiment=loop", "tracking.log_model=false",
                       "refit=false"],
                      store.home)
    assert result.returncode == 0, result.stderr
    assert f"extra coded: round1.csv adds {len(coded)} of its {len(coded)} coded rows" in result.stderr + result.stdout
    client = store_client(store.home)
    (run,) = client.search_runs([client.get_experiment_by_name("loop").experiment_id])
    parent = client.get_run(store.run_id)
    assert run.data.tags["loop.round"] == "1" and run.data.tags["loop.parent_run"] == store.run_id
    assert run.data.params["data.fingerprint"] != parent.data.params["data.fingerprint"]
    from policy_topics.data.sources import file_sha256

    assert run.data.params["loop.sheet_0.sha256"] == file_sha256(sheet)
    assert run.data.params["loop.sheet_0.path"] == str(sheet.resolve())
    listed = json.loads((Path(client.download_artifacts(run.info.run_id, "data/extra_coded.json",
                                                        str(tmp_path)))).read_text())
    assert listed["parent_run"] == store.run_id and listed["sheets"][0]["appended"] == len(coded)
    card = Path(client.download_artifacts(run.info.run_id, "model_card.md", str(tmp_path))).read_text()
    assert f"Coded sheet appended to the training split: `round1.csv` (sha256 `{file_sha256(sheet)}`)" in card

    # The next suggestion leaves out what the coded sheet holds.
    again = tmp_path / "round2.csv"
    result = call_cli(["suggest", "--model", store.registered, "--input", str(corpus), "--n", "5",
                       "--output", str(again), "--exclude", str(sheet)], store.home)
    assert result.returncode == 0, result.stderr
    assert not {row["text"] for row in _rows(again)} & {row["text"] for row in coded}


def test_a_bad_coded_sheet_is_one_line_naming_its_rows_and_leaves_no_run(store, corpus, tmp_path):
    path = tmp_path / "bad.csv"
    made = call_cli(["suggest", "--model", store.registered, "--input", str(corpus), "--n", "3", "--output",
                     str(path)], store.home)
    assert made.returncode == 0, made.stderr
    rows = _code(path, "99")
    client = store_client(store.home)
    before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    result = call_cli(["train", f"data.extra_coded=[{path}]", "tracking.experiment=loop-bad"], store.home)
    assert result.returncode == 2
    assert "bad.csv: unknown codes" in result.stderr and rows[0]["id"] in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == before
    assert client.get_experiment_by_name("loop-bad") is None


def test_a_round_follows_its_parents_round_and_a_parent_missing_from_the_store_is_said(store):
    from policy_topics.tracking.loop import lineage

    uri = f"sqlite:///{store.home / 'mlruns' / 'mlflow.db'}"
    client = store_client(store.home)
    experiment = client.create_experiment("loop-rounds", artifact_location=(store.home / "rounds").as_uri())
    second = client.create_run(experiment, tags={"loop.round": "2", "loop.parent_run": store.run_id}).info.run_id
    found = lineage([{"model_run_id": store.run_id}, {"model_run_id": second}], uri)
    assert (found.parent_run, found.round, found.note) == (second, 3, None)  # the latest round's run is the parent
    assert lineage([{"model_run_id": store.run_id}], uri).round == 1  # a run without the tag is round 0
    gone = lineage([{"model_run_id": "f" * 32}], uri)
    assert (gone.parent_run, gone.round) == ("f" * 32, 1) and "is not in" in gone.note
    assert lineage([], uri) is None


def test_coded_sheets_and_streamed_training_are_refused_together_in_one_line(store, corpus, tmp_path):
    path = tmp_path / "streamed.csv"
    made = call_cli(["suggest", "--model", store.registered, "--input", str(corpus), "--n", "3", "--output",
                     str(path)], store.home)
    assert made.returncode == 0, made.stderr
    _code(path)
    result = call_cli(["train", "experiment=out_of_core", f"data.extra_coded=[{path}]",
                       "tracking.experiment=loop-streamed"], store.home)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
        "error: coded sheets (data.extra_coded) cannot join streamed (out-of-core) training; train in memory, or "
        "add the coded rows to the data file")
    assert store_client(store.home).get_experiment_by_name("loop-streamed") is None
