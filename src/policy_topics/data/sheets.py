"""Coder sheets: the CSV files people code in a spreadsheet, and the manifest beside each that lets a coded
sheet be checked against what was issued.

A sheet has the columns ``id``, ``text``, ``code`` (empty when issued), optionally ``note``, then read-only
columns the issuing command adds (a suggestion's ``guess_1``, ``guess_1_topic``, ``guess_1_probability``,
...; a review's ``given_code``, ``model_code``, ...). It is written as UTF-8 with a byte-order mark so that
spreadsheet programs read accents right. ``SHEET.manifest.json`` beside ``SHEET.csv`` records the kind of
sheet, the source file and its sha256, the model, the seed, when it was made, its columns, and the sha256
of each row's text. :func:`read_coded_sheet` refuses a coded sheet that does not match its manifest, in one
line naming the rows and the fix.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics.errors import SheetError
from policy_topics.files import atomic_file
from policy_topics.taxonomy import topic_name

KINDS = ("sample", "suggest", "review")
REQUIRED = ("id", "text", "code")
SHOWN_IDS = 5  # rows named in an error before "and N more"

Guesses = Sequence[Sequence[tuple[int, float]]]  # per row: the model's best (code, probability) pairs


@dataclass(frozen=True)
class CodedSheet:
    """A coded sheet that matched its manifest: ``frame`` has ``id`` (str), ``text``, ``code`` (int) and
    the sheet's other columns, in sheet order; ``sha256`` is the sheet file's digest."""

    path: Path
    frame: pd.DataFrame
    manifest: dict[str, Any]
    sha256: str


def manifest_path(sheet: Path) -> Path:
    """``SHEET.manifest.json`` beside ``SHEET.csv``."""
    return sheet.with_name(f"{sheet.stem}.manifest.json")


def text_digest(text: str) -> str:
    """The sha256 of a text as a spreadsheet hands it back: line ends and surrounding spaces do not count."""
    normal = str(text).replace("\r\n", "\n").replace("\r", "\n").strip()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def _guess_columns(guesses: Guesses, rows: int) -> dict[str, list[Any]]:
    if len(guesses) != rows:
        raise SheetError(f"{len(guesses)} rows of guesses for {rows} sheet rows; give one list per row")
    width = max((len(g) for g in guesses), default=0)
    columns: dict[str, list[Any]] = {}
    for k in range(width):
        picked = [g[k] if k < len(g) else None for g in guesses]
        columns[f"guess_{k + 1}"] = ["" if p is None else int(p[0]) for p in picked]
        columns[f"guess_{k + 1}_topic"] = ["" if p is None else topic_name(int(p[0])) for p in picked]
        columns[f"guess_{k + 1}_probability"] = ["" if p is None else round(float(p[1]), 4) for p in picked]
    return columns


def _sheet_frame(frame: pd.DataFrame, guesses: Guesses | None) -> pd.DataFrame:
    missing = [c for c in ("id", "text") if c not in frame.columns]
    if missing:
        raise SheetError(f"a sheet needs the columns id and text; missing: {', '.join(missing)}")
    out = pd.DataFrame({"id": frame["id"].astype(str).to_numpy(), "text": frame["text"].astype(str).to_numpy(),
                        "code": ""})
    extra = [c for c in frame.columns if c not in ("id", "text", "code")]
    for column in sorted(extra, key=lambda c: c != "note"):  # note first, then the read-only columns
        out[column] = frame[column].to_numpy()
    for column, values in _guess_columns(guesses, len(out)).items() if guesses is not None else ():
        out[column] = values
    duplicated = out["id"][out["id"].duplicated()].unique().tolist()
    if duplicated:
        raise SheetError(f"ids must be unique on a sheet; repeated: {_named(duplicated)}")
    return out


def write_sheet(path: Path, frame: pd.DataFrame, manifest_fields: Mapping[str, Any],
                guesses: Guesses | None = None) -> Path:
    """Write ``frame`` (``id``, ``text``, optional ``note`` and read-only columns) as a coder sheet at
    ``path`` with an empty ``code`` column, and its manifest beside it; both appear together or not at all.
    ``manifest_fields`` must hold ``kind`` (sample, suggest or review) and may hold ``source``,
    ``source_sha256``, ``model``, ``seed`` and anything else the issuing command wants to keep. Returns the
    manifest's path."""
    path = Path(path)
    kind = manifest_fields.get("kind")
    if kind not in KINDS:
        raise SheetError(f"unknown sheet kind {kind!r}; use one of: {', '.join(KINDS)}")
    if path.suffix.lower() != ".csv":
        raise SheetError(f"a coder sheet is a .csv file, not {path.name}; name the output SHEET.csv")
    sheet = _sheet_frame(frame, guesses)
    manifest = {**dict(manifest_fields), "sheet": path.name,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "columns": list(sheet.columns), "rows": len(sheet),
                "texts": {i: text_digest(t) for i, t in zip(sheet["id"], sheet["text"], strict=True)}}
    target = manifest_path(path)
    with atomic_file(target, "--output") as meta, atomic_file(path, "--output", binary=True) as handle:
        handle.write(sheet.to_csv(index=False, quoting=csv.QUOTE_MINIMAL,
                                  lineterminator="\r\n").encode("utf-8-sig"))
        json.dump(manifest, meta, indent=1, ensure_ascii=False, default=str)
    return target


def _named(ids: Sequence[Any], rows: Sequence[int] | None = None) -> str:
    shown = [f"{i} (row {r})" for i, r in zip(ids, rows, strict=True)] if rows is not None else list(map(str, ids))
    more = len(shown) - SHOWN_IDS
    return ", ".join(shown[:SHOWN_IDS]) + (f" and {more} more" if more > 0 else "")


def check_exists(path: Path) -> None:
    """A missing coded sheet is a :class:`~policy_topics.errors.SheetError` (checked before slow work)."""
    if not Path(path).is_file():
        raise SheetError(f"coded sheet not found: {path}; give the .csv file the coders filled in")


def _read_manifest(path: Path) -> dict[str, Any]:
    target = manifest_path(path)
    if not target.is_file():
        raise SheetError(f"no manifest {target.name} beside {path.name}; keep the manifest the sheet was issued "
                         "with in the same folder (sheets come from policy-topics sample, suggest or review)")
    try:
        manifest = json.loads(target.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SheetError(f"{target.name} is not a readable manifest ({exc}); restore it as issued") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("texts"), dict):
        raise SheetError(f"{target.name} is not a coder-sheet manifest; restore it as issued")
    return manifest


def _read_frame(path: Path, manifest: Mapping[str, Any]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="cp1252")  # saved by Excel as ANSI
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SheetError(f"{path.name} is not a readable CSV ({str(exc).strip()}); save it as CSV again") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    expected = [c for c in manifest.get("columns", REQUIRED) if c in REQUIRED or c == "note"] or list(REQUIRED)
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        found = ", ".join(frame.columns) or "none"
        raise SheetError(f"{path.name} lacks the column(s) {', '.join(missing)} (found: {found}); restore the "
                         f"header row as issued: {', '.join(manifest.get('columns', REQUIRED))}")
    return frame


def _code_of(value: str, known: Collection[int], names: Mapping[str, int]) -> int | None:
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return names.get(text.casefold())
    if not math.isfinite(number) or number != int(number) or int(number) not in known:
        return None
    return int(number)


def _problems(frame: pd.DataFrame, manifest: Mapping[str, Any], known: Collection[int]) -> list[str]:
    ids, rows = frame["id"].str.strip(), frame.index.to_numpy() + 2  # the header is row 1
    texts: Mapping[str, str] = manifest["texts"]
    names = {topic_name(c).casefold(): c for c in known}
    codes = frame["code"].str.strip()
    checks = [
        (ids.duplicated(keep=False), "repeated ids", "keep one row per id"),
        (~ids.isin(list(texts)), "ids not on the sheet as issued", "restore the ids as issued"),
        (pd.Series([i in texts and text_digest(t) != texts[i] for i, t in zip(ids, frame["text"], strict=True)],
                   index=frame.index), "changed texts", "restore the texts as issued (code in the code column)"),
        (codes == "", "no code", "code them, or delete those rows to leave them out"),
        (pd.Series([c != "" and _code_of(c, known, names) is None for c in codes], index=frame.index),
         "unknown codes", f"use a topic code ({', '.join(map(str, sorted(known)))}) or its exact name"),
    ]
    return [f"{what}: {_named(ids[bad].tolist(), rows[bad.to_numpy()].tolist())}; {fix}"
            for bad, what, fix in checks if bad.any()]


def read_coded_sheet(path: Path, known_codes: Collection[int]) -> CodedSheet:
    """The coded sheet at ``path``, checked against its manifest: ids unknown or repeated, texts changed,
    codes empty or not in ``known_codes`` (a code, ``"1.0"`` read as 1, or the topic's exact name), or
    columns missing are one :class:`~policy_topics.errors.SheetError` naming the rows and the fix. Rows
    deleted from the sheet are left out (the manifest still lists them)."""
    from policy_topics.data.sources import file_sha256

    path = Path(path)
    check_exists(path)
    manifest = _read_manifest(path)
    frame = _read_frame(path, manifest)
    known = {int(c) for c in known_codes}
    if frame.empty or (frame["code"].str.strip() == "").all():
        raise SheetError(f"no row of {path.name} has a code yet: fill the code column")
    problems = _problems(frame, manifest, known)
    if problems:
        raise SheetError(f"{path.name}: " + "; ".join(problems))
    names = {topic_name(c).casefold(): c for c in known}
    coded = frame.assign(id=frame["id"].str.strip(),
                         code=[_code_of(c, known, names) for c in frame["code"]]).astype({"code": "int64"})
    return CodedSheet(path, coded.reset_index(drop=True), manifest, file_sha256(path))
