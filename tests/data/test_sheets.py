"""Coder sheets: written with a manifest, read back only when they match what was issued."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from policy_topics.data.sheets import manifest_path, read_coded_sheet, write_sheet
from policy_topics.errors import SheetError

KNOWN = {1, 3, 12, 20}


def _issue(tmp_path: Path, guesses: list[list[tuple[int, float]]] | None = None) -> Path:
    frame = pd.DataFrame({"id": ["a1", "a2", "a3"], "text": ["Tax cuts for é", "Hospital funds", "Police, courts"]})
    sheet = tmp_path / "sheet.csv"
    write_sheet(sheet, frame, {"kind": "sample", "source": "corpus.csv", "seed": 0}, guesses)
    return sheet


def _rows(sheet: Path) -> list[dict[str, str]]:
    with open(sheet, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _save(sheet: Path, rows: list[dict[str, str]], fields: list[str] | None = None) -> None:
    with open(sheet, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _code(sheet: Path, codes: list[str]) -> list[dict[str, str]]:
    rows = _rows(sheet)
    for row, code in zip(rows, codes, strict=True):
        row["code"] = code
    _save(sheet, rows)
    return rows


def test_a_sheet_is_written_with_a_bom_an_empty_code_column_and_a_manifest_of_its_texts(tmp_path: Path) -> None:
    sheet = _issue(tmp_path)
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = _rows(sheet)
    assert list(rows[0]) == ["id", "text", "code"]
    assert [r["code"] for r in rows] == ["", "", ""]
    manifest = json.loads(manifest_path(sheet).read_text(encoding="utf-8"))
    assert manifest["kind"] == "sample" and manifest["seed"] == 0 and manifest["source"] == "corpus.csv"
    assert sorted(manifest["texts"]) == ["a1", "a2", "a3"] and manifest["created_at"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_guesses_become_read_only_columns_with_topic_names(tmp_path: Path) -> None:
    sheet = _issue(tmp_path, [[(1, 0.81), (3, 0.1)], [(3, 0.5), (1, 0.2)], [(12, 0.9), (20, 0.05)]])
    row = _rows(sheet)[2]
    assert row["guess_1"] == "12" and row["guess_1_topic"] == "Law and Crime"
    assert float(row["guess_1_probability"]) == pytest.approx(0.9) and row["guess_2"] == "20"


def test_a_coded_sheet_reads_back_codes_as_integers_from_numbers_or_names(tmp_path: Path) -> None:
    sheet = _issue(tmp_path)
    _code(sheet, ["1.0", "health", "12"])
    coded = read_coded_sheet(sheet, KNOWN)
    assert coded.frame["code"].tolist() == [1, 3, 12]
    assert coded.frame["id"].tolist() == ["a1", "a2", "a3"] and coded.manifest["kind"] == "sample"
    assert len(coded.sha256) == 64


def test_rows_deleted_by_the_coders_are_left_out(tmp_path: Path) -> None:
    sheet = _issue(tmp_path)
    rows = _code(sheet, ["1", "3", "12"])
    _save(sheet, rows[:2])
    assert read_coded_sheet(sheet, KNOWN).frame["id"].tolist() == ["a1", "a2"]


def test_a_sheet_not_yet_coded_is_refused(tmp_path: Path) -> None:
    sheet = _issue(tmp_path)
    with pytest.raises(SheetError, match=r"no row of sheet\.csv has a code yet: fill the code column"):
        read_coded_sheet(sheet, KNOWN)


@pytest.mark.parametrize(("change", "message"), [
    (lambda rows: rows.append(dict(rows[0])), r"repeated ids: a1 \(row 2\), a1 \(row 5\)"),
    (lambda rows: rows[1].update(id="zz"), r"ids not on the sheet as issued: zz \(row 3\)"),
    (lambda rows: rows[2].update(text="Police"), r"changed texts: a3 \(row 4\); restore the texts"),
    (lambda rows: rows[0].update(code=""), r"no code: a1 \(row 2\); code them, or delete"),
    (lambda rows: rows[0].update(code="Helth"), r"unknown codes: a1 \(row 2\); use a topic code"),
    (lambda rows: rows[0].update(code="7"), r"unknown codes: a1 \(row 2\)"),
    (lambda rows: rows[0].update(code="1.5"), r"unknown codes: a1 \(row 2\)"),
])
def test_a_bad_coded_sheet_is_one_line_naming_the_rows_and_the_fix(tmp_path: Path, change, message: str) -> None:
    sheet = _issue(tmp_path)
    rows = _code(sheet, ["1", "3", "12"])
    change(rows)
    _save(sheet, rows)
    with pytest.raises(SheetError, match=message) as error:
        read_coded_sheet(sheet, KNOWN)
    assert "\n" not in str(error.value)


def test_a_renamed_column_is_refused_with_the_header_as_issued(tmp_path: Path) -> None:
    sheet = _issue(tmp_path)
    rows = [{"id": r["id"], "text": r["text"], "topic": "1"} for r in _rows(sheet)]
    _save(sheet, rows)
    with pytest.raises(SheetError, match=r"lacks the column\(s\) code .*restore the header row as issued: id, text"):
        read_coded_sheet(sheet, KNOWN)


def test_a_sheet_without_its_manifest_is_refused(tmp_path: Path) -> None:
    sheet = _issue(tmp_path)
    _code(sheet, ["1", "3", "12"])
    manifest_path(sheet).unlink()
    with pytest.raises(SheetError, match=r"no manifest sheet\.manifest\.json beside sheet\.csv"):
        read_coded_sheet(sheet, KNOWN)


def test_a_missing_sheet_is_named(tmp_path: Path) -> None:
    with pytest.raises(SheetError, match=r"coded sheet not found: .*nothing\.csv; give the \.csv file"):
        read_coded_sheet(tmp_path / "nothing.csv", KNOWN)


def test_a_text_saved_with_windows_line_ends_still_matches(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["1"], "text": ["two\nlines "]})
    sheet = tmp_path / "s.csv"
    write_sheet(sheet, frame, {"kind": "review"})
    _save(sheet, [{"id": "1", "text": "two\r\nlines", "code": "Health"}])
    assert read_coded_sheet(sheet, KNOWN).frame["code"].tolist() == [3]


def test_writing_a_sheet_with_repeated_ids_writes_nothing(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["1", "1"], "text": ["a", "b"]})
    with pytest.raises(SheetError, match="repeated: 1"):
        write_sheet(tmp_path / "s.csv", frame, {"kind": "sample"})
    assert list(tmp_path.iterdir()) == []
