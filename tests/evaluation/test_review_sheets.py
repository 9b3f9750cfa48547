"""Review sheets on small frames: the model's most confident mistakes and every copy of the texts cleaning
dropped for conflicting codes, written as coder sheets that come back coded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from policy_topics.data.cleaning import CleaningReport, clean, row_place
from policy_topics.data.sheets import read_coded_sheet, write_sheet
from policy_topics.errors import ConfigError
from policy_topics.evaluation.metrics import score
from policy_topics.evaluation.review import COLUMNS, conflicts_sheet, mistakes_sheet, text_id
from policy_topics.jobs.review import REVIEW_N, check_settings, review_count

CLASSES = np.array([1, 3, 4])


def evaluation() -> object:
    """Five documents: two right, three wrong with top probabilities 0.9, 0.6 and 0.8 (the 0.9 one twice)."""
    texts = ["budget deficit", "hospital grants", "farm credit", "nurse training", "farm credit", "tax cuts"]
    y_true = np.array([1, 3, 4, 3, 4, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05],
                      [0.1, 0.8, 0.1]])
    return score(y_true, proba, CLASSES, "test", texts)


def test_confident_mistakes_are_the_wrong_predictions_by_probability_each_text_once():
    sheet = mistakes_sheet(evaluation(), 10, "the test split")
    assert list(sheet.columns) == COLUMNS
    assert sheet["text"].tolist() == ["farm credit", "tax cuts", "nurse training"]
    assert sheet["given_code"].tolist() == [4, 1, 3] and sheet["model_code"].tolist() == [1, 3, 4]
    assert sheet["model_probability"].tolist() == [0.9, 0.8, 0.6]
    assert sheet["given_topic"].iloc[0] == "Agriculture" and sheet["model_topic"].iloc[0] == "Macroeconomics"
    assert sheet["reason"].iloc[0] == ("the model gives Macroeconomics 90% on the test split; the given code "
                                       "Agriculture gets 5%")


def test_the_number_of_confident_mistakes_is_capped_by_n():
    assert mistakes_sheet(evaluation(), 2, "the test split")["text"].tolist() == ["farm credit", "tax cuts"]
    assert mistakes_sheet(evaluation(), 0, "the test split").empty


def test_a_given_code_the_model_never_saw_is_named_as_such():
    ev = score(np.array([7, 1]), np.array([[0.7, 0.2, 0.1], [0.9, 0.05, 0.05]]), CLASSES, "test", ["a", "b"])
    sheet = mistakes_sheet(ev, 5, "the test split")
    assert sheet["reason"].tolist() == ["the model gives Macroeconomics 70% on the test split; the given code is a "
                                        "topic the model never saw in training"]


def conflicting_frame() -> tuple[pd.DataFrame, CleaningReport]:
    rows = [("Farm credit act", 4), ("Hospital grants", 3), ("Farm credit act", 1), ("Tax cuts", 1),
            ("Farm credit act", 4), ("Hospital grants", 3)]
    report = CleaningReport()
    kept = clean(pd.DataFrame(rows, columns=["text", "label"]), "NFKC", "warn", "coded.csv", report, row_place(2))
    return kept, report


def test_cleaning_keeps_every_copy_of_a_conflicting_text_with_its_place_and_drops_them_from_the_data():
    kept, report = conflicting_frame()
    assert sorted(kept["text"]) == ["Hospital grants", "Tax cuts"]
    assert report.conflicts.to_dict("list") == {"text": ["Farm credit act"] * 3, "label": [4, 1, 4],
                                                "where": ["line 2", "line 4", "line 6"]}
    assert "conflicts" not in report.counts() and report.counts()["conflicting_texts"] == 1


def test_the_conflicts_sheet_lists_every_copy_with_the_models_guess_and_where_each_copy_is():
    _, report = conflicting_frame()
    proba = np.tile([0.2, 0.1, 0.7], (3, 1))
    sheet = conflicts_sheet(report.conflicts, proba, CLASSES, "coded.csv")
    stem = text_id("Farm credit act")
    assert sheet["id"].tolist() == [f"{stem}-1", f"{stem}-2", f"{stem}-3"]
    assert sheet["given_code"].tolist() == [4, 1, 4] and set(sheet["model_code"]) == {4}
    assert sheet["model_probability"].tolist() == [0.7, 0.7, 0.7]
    assert sheet["reason"].iloc[1] == ("this copy is at line 4 of coded.csv; the text is coded 1 Macroeconomics "
                                       "(line 4) and 4 Agriculture (line 2, line 6) there; left out of training")


def test_no_conflicts_give_an_empty_sheet_with_the_review_columns():
    sheet = conflicts_sheet(pd.DataFrame(columns=["text", "label", "where"]), None, CLASSES, "coded.csv")
    assert sheet.empty and list(sheet.columns) == COLUMNS


def test_a_review_sheet_comes_back_coded_through_the_coder_sheet_reader(tmp_path):
    sheet = mistakes_sheet(evaluation(), 10, "the test split")
    path = tmp_path / "confident_mistakes.csv"
    write_sheet(path, sheet, {"kind": "review", "source": "coded.csv"})
    issued = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(issued.columns) == ["id", "text", "code", *COLUMNS[2:]]
    issued["code"] = issued["model_code"]  # the team agrees with the model on every row
    issued.to_csv(path, index=False, encoding="utf-8-sig")
    coded = read_coded_sheet(path, CLASSES.tolist())
    assert coded.manifest["kind"] == "review" and coded.frame["code"].tolist() == [1, 3, 4]


@pytest.mark.parametrize("value", [-5, 1.5, "all", False])
def test_a_bad_review_size_is_one_config_error_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"evaluation.review.n must be a whole number >= 0"):
        check_settings({"review": {"n": value}})
    assert review_count({}) == REVIEW_N and review_count({"review": {"n": 0}}) == 0
