"""A validation sample of a corpus: seeded, reproducible, stratified in proportion, written as a coder sheet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from policy_topics.errors import ConfigError
from policy_topics.jobs.sample import SampleRequest, allocate, draw, run_sample

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "cap_demo.csv"


def _sheet(tmp_path: Path, name: str, **options) -> pd.DataFrame:
    run_sample(SampleRequest(str(DEMO), tmp_path / name, **{"n": 20, **options}))
    return pd.read_csv(tmp_path / name, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def test_a_sample_is_reproducible_with_a_seed_and_differs_with_another(tmp_path: Path) -> None:
    first, again = _sheet(tmp_path, "a.csv", seed=3), _sheet(tmp_path, "b.csv", seed=3)
    other = _sheet(tmp_path, "c.csv", seed=4)
    assert first["id"].tolist() == again["id"].tolist()
    assert set(first["id"]) != set(other["id"])
    assert first["code"].eq("").all() and list(first.columns) == ["id", "text", "code"]


def test_a_larger_sample_with_the_same_seed_holds_the_smaller_one_first(tmp_path: Path) -> None:
    small, large = _sheet(tmp_path, "a.csv", seed=1), _sheet(tmp_path, "b.csv", seed=1, n=50)
    assert large["id"].tolist()[:20] == small["id"].tolist()


def test_sample_ids_are_rows_of_the_corpus_and_texts_match(tmp_path: Path) -> None:
    corpus = pd.read_csv(DEMO)
    sheet = _sheet(tmp_path, "a.csv")
    rows = [int(i.split(":")[1]) - 2 for i in sheet["id"]]  # file:row as a spreadsheet shows it, header row 1
    assert sheet["text"].tolist() == corpus["text"].iloc[rows].tolist()


def test_ids_come_from_the_corpus_id_column_and_empty_texts_are_skipped(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.csv"
    pd.DataFrame({"id": [f"doc-{i}" for i in range(10)], "text": ["", " "] + [f"text {i}" for i in range(8)]}).to_csv(
        corpus, index=False)
    result = run_sample(SampleRequest(str(corpus), tmp_path / "s.csv", n=8, seed=0))
    sheet = pd.read_csv(tmp_path / "s.csv", dtype=str, encoding="utf-8-sig")
    assert sorted(sheet["id"]) == [f"doc-{i}" for i in range(2, 10)]
    assert result.empty == 2 and result.corpus_size == 8
    manifest = json.loads((tmp_path / "s.manifest.json").read_text())
    assert manifest["skipped_empty"] == 2 and manifest["design"] == "random" and manifest["corpus_size"] == 8


def test_a_text_file_is_one_document_per_line(tmp_path: Path) -> None:
    corpus = tmp_path / "speeches.txt"
    corpus.write_text("First speech\n\nSecond speech\nThird speech\n", encoding="utf-8")
    result = run_sample(SampleRequest(str(corpus), tmp_path / "s.csv", n=3, seed=0))
    sheet = pd.read_csv(tmp_path / "s.csv", dtype=str, encoding="utf-8-sig")
    assert sorted(sheet["id"]) == ["speeches.txt:1", "speeches.txt:3", "speeches.txt:4"] and result.empty == 1


def test_a_sample_larger_than_the_corpus_says_how_many_documents_there_are(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--n 5000 is more than the 924 documents of cap_demo\.csv; ask for at "
                                          r"most --n 924"):
        run_sample(SampleRequest(str(DEMO), tmp_path / "s.csv", n=5000))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("options", "message"), [
    ({"stratify": True}, "--stratify needs --model MODEL"),
    ({"show_guesses": True}, "--show-guesses needs --model MODEL"),
    ({"n": 0}, "--n must be at least 1"),
])
def test_a_sample_request_that_cannot_work_is_refused_before_reading(tmp_path: Path, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        run_sample(SampleRequest(str(DEMO), tmp_path / "s.csv", **{"n": 10, **options}))


def test_an_existing_sheet_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("id,text,code\n1,coded already,3\n")
    with pytest.raises(ConfigError, match=r"exists \(it may hold codes already\)"):
        run_sample(SampleRequest(str(DEMO), tmp_path / "s.csv", n=10))
    assert (tmp_path / "s.csv").read_text().endswith("coded already,3\n")


def test_stratified_allocation_is_proportional_with_at_least_one_per_stratum() -> None:
    sizes = {1: 700, 2: 200, 3: 90, 4: 10}
    assert allocate(sizes, 100) == {1: 70, 2: 20, 3: 9, 4: 1}
    assert allocate({1: 990, 2: 5, 3: 5}, 10) == {1: 8, 2: 1, 3: 1}  # the minimum of one taken from the largest
    assert allocate(sizes, 2) == {1: 1, 2: 1, 3: 0, 4: 0}  # fewer documents than strata: the largest first
    assert allocate({1: 3, 2: 1}, 4) == {1: 3, 2: 1}  # never more than a stratum holds


def test_a_stratified_draw_takes_each_strata_allocation_in_random_order() -> None:
    strata = np.repeat([5, 7, 9], [600, 300, 100])
    rows = draw(len(strata), 50, seed=2, strata=strata)
    assert len(set(rows.tolist())) == 50
    assert pd.Series(strata[rows]).value_counts().to_dict() == {5: 30, 7: 15, 9: 5}
    assert draw(len(strata), 50, seed=2, strata=strata).tolist() == rows.tolist()
    assert not (np.diff(strata[rows]) >= 0).all()  # the strata are mixed on the sheet, not in blocks
