"""Coded sheets appended to a dataset (``data.extra_coded``): training split only, never a text of the held-out
splits, a fingerprint of their own, the dataset's own fingerprint unchanged without them."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from conftest import compose

from policy_topics.data.prep import prepare_dataset, prepare_splits
from policy_topics.data.sheets import write_sheet
from policy_topics.errors import SheetError

NEW = ["The harbour authority raised docking fees for cargo ships.", "A grant pays for solar panels on schools.",
       "The court ruled on overtime pay for nurses."]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("extra-home")
    return compose(f"paths.home_dir={home}", "seed=0")


@pytest.fixture(scope="module")
def base(settings):
    return prepare_splits(settings["data"], settings["prep"], settings["paths"])


def _coded_sheet(path: Path, texts: list[str], codes: list[str]) -> Path:
    frame = pd.DataFrame({"id": [f"s{i}" for i in range(len(texts))], "text": texts})
    write_sheet(path, frame, {"kind": "suggest", "model_run_id": "0" * 32, "seed": 0})
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row, code in zip(rows, codes, strict=True):
        row["code"] = code
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _with(settings: dict, *sheets: Path):
    data = {**settings["data"], "extra_coded": [str(s) for s in sheets]}
    return prepare_dataset(data, settings["prep"], settings["paths"])


def test_without_coded_sheets_the_dataset_and_its_fingerprint_are_as_before(settings, base):
    unset = {k: v for k, v in settings["data"].items() if k != "extra_coded"}
    for data in (settings["data"], unset):
        prepared = prepare_dataset(data, settings["prep"], settings["paths"])
        assert prepared.fingerprint == base.fingerprint
        assert len(prepared.splits["train"]) == len(base.splits["train"])
    assert settings["data"]["extra_coded"] == []


def test_a_coded_sheet_joins_the_training_split_only_with_a_fingerprint_of_its_own(settings, base, tmp_path):
    sheet = _coded_sheet(tmp_path / "round1.csv", NEW, ["3", "Education", "5"])
    prepared = _with(settings, sheet)
    train = prepared.splits["train"]
    assert len(train) == len(base.splits["train"]) + 3
    assert train.tail(3)["text"].tolist() == NEW and train.tail(3)["label"].tolist() == [3, 6, 5]
    for split in ("validation", "test"):
        pd.testing.assert_frame_equal(prepared.splits[split], base.splits[split])
    assert prepared.fingerprint != base.fingerprint
    assert prepared.report["extra_coded"][0]["sha256"] and prepared.report["extra_coded"][0]["appended"] == 3
    other = _with(settings, _coded_sheet(tmp_path / "round1b.csv", NEW, ["3", "6", "12"]))
    assert other.fingerprint not in (base.fingerprint, prepared.fingerprint)


def test_coded_texts_of_the_test_split_are_left_out_with_a_warning(settings, base, tmp_path, caplog):
    held_out = base.splits["test"]["text"].iloc[0]
    train_text = base.splits["train"]["text"].iloc[0]
    sheet = _coded_sheet(tmp_path / "leaky.csv", [held_out, train_text, NEW[0]], ["1", "1", "10"])
    prepared = _with(settings, sheet)
    assert len(prepared.splits["train"]) == len(base.splits["train"]) + 1
    assert held_out not in set(prepared.splits["train"]["text"])
    assert prepared.report["extra_coded"][0]["dropped"] == {"in the validation or test split": 1,
                                                            "already in the training split or an earlier sheet": 1}
    assert "1 coded rows left out because their text is in the validation or test split" in caplog.text


def test_a_sheet_with_a_code_the_dataset_has_no_documents_of_is_refused_naming_the_row(settings, tmp_path):
    sheet = _coded_sheet(tmp_path / "odd.csv", NEW, ["3", "99", "5"])
    with pytest.raises(SheetError, match=r"odd\.csv: unknown codes: s1 \(row 3\)"):
        _with(settings, sheet)
