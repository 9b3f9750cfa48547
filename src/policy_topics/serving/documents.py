"""The documents to code, read one at a time from arguments, stdin, a file or a folder, each with its id
and the input columns to carry into the output, so coded rows merge back into the user's table.

Ids: the ``--id-column``'s value when given, else where the document is: ``file.csv:LINE`` (the line an
spreadsheet shows, the header being row 1), ``file.jsonl:LINE``, ``file.parquet:ROW``, the file
name of a ``.txt`` document, ``stdin:LINE``, ``arg:N``. A ``.txt`` file is one document (``lines=True``:
one per line, as stdin always is).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from policy_topics.errors import DataFormatError, DataSourceError
from policy_topics.files import file_format, open_text, parquet_file

INPUT_FORMATS = ("txt", "csv", "tsv", "jsonl", "parquet")


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    kept: dict[str, Any] = field(default_factory=dict)  # input columns carried into the output


@dataclass(frozen=True)
class Reading:
    """How to read the input: which column holds the text, which the id, which columns to keep (None:
    every other column; [] none), and whether a text file holds one document per line."""

    column: str = "text"
    id_column: str | None = None
    keep: Sequence[str] | None = None
    encoding: str = "utf-8"
    lines: bool = False

    def columns(self, found: Sequence[str], where: str) -> list[str]:
        """The columns to keep, of those ``found``; a missing text, id or kept column is one line."""
        for role, name in (("--column", self.column), ("--id-column", self.id_column), *(
                ("--keep", k) for k in self.keep or ())):
            if name is not None and name not in found:
                raise DataFormatError(f"column '{name}' ({role}) not found in {where}; columns found: "
                                      f"{', '.join(map(str, found)) or 'none'}")
        if self.keep is not None:
            return list(self.keep)
        return [c for c in found if c not in (self.column, self.id_column)]

    def document(self, default_id: str, values: dict[str, Any], kept: list[str]) -> Document:
        text = values.get(self.column)
        ident = default_id if self.id_column is None else str(values.get(self.id_column))
        return Document(ident, "" if text is None else str(text), {k: values.get(k) for k in kept})


def input_format(path: Path, declared: str | None) -> str:
    return file_format(path, declared, INPUT_FORMATS, "--input-format")


def _lines(handle: IO[str], name: str) -> Iterator[Document]:
    for number, line in enumerate(handle, start=1):
        yield Document(f"{name}:{number}", line.rstrip("\r\n"))


def delimited(handle: IO[str], name: str, delimiter: str, reading: Reading) -> Iterator[Document]:
    """The documents of a CSV (or TSV) read from ``handle``, ids ``name:ROW``."""
    reader = csv.DictReader(handle, delimiter=delimiter)
    kept = reading.columns(list(reader.fieldnames or []), name)
    for number, row in enumerate(reader, start=2):  # the header is row 1, as a spreadsheet shows it
        yield reading.document(f"{name}:{number}", row, kept)


def _delimited(path: Path, delimiter: str, reading: Reading) -> Iterator[Document]:
    with open_text(path, reading.encoding) as handle:
        yield from delimited(handle, path.name, delimiter, reading)


def _jsonl(path: Path, reading: Reading) -> Iterator[Document]:
    kept: list[str] | None = None
    with open_text(path, reading.encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(
                    f"{path.name} line {number} is not JSON ({exc.msg}); one object per line") from None
            if not isinstance(record, dict) or reading.column not in record:
                raise DataFormatError(f"{path.name} line {number} has no field '{reading.column}'; set --column")
            if kept is None:  # the first record's fields decide what is kept
                kept = reading.columns(list(record), f"{path.name} line {number}")
            yield reading.document(f"{path.name}:{number}", record, kept)


def _parquet(path: Path, reading: Reading) -> Iterator[Document]:
    names = parquet_file(path, [reading.column], "; set --column to one of them").schema_arrow.names
    kept = reading.columns(names, path.name)
    wanted = list(dict.fromkeys([reading.column, *([reading.id_column] if reading.id_column else []), *kept]))
    row = 0
    for batch in parquet_file(path, wanted).iter_batches(columns=wanted, batch_size=4096):
        for values in batch.to_pylist():
            row += 1
            yield reading.document(f"{path.name}:{row}", values, kept)


def read_documents(texts: list[str], source: str | None, reading: Reading,
                   fmt: str | None = None) -> Iterator[Document]:
    """Documents in input order: argument texts, then those of stdin (``-``, one per line), a file or a
    folder of ``.txt`` files (one per file)."""
    for number, text in enumerate(texts, start=1):
        yield Document(f"arg:{number}", text)
    if source is None:
        return
    if source == "-":
        yield from _lines(io.TextIOWrapper(sys.stdin.buffer, encoding=reading.encoding), "stdin")
        return
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataSourceError(f"no .txt files in the folder {path}; put one document per .txt file there")
        for file in files:
            yield Document(file.name, file.read_text(encoding=reading.encoding))
        return
    if not path.is_file():
        raise DataSourceError(f"input not found: {path}; give a file, a folder of .txt files, or - for stdin")
    kind = input_format(path, fmt)
    try:
        if kind == "txt":
            with open_text(path, reading.encoding) as handle:
                if reading.lines:
                    yield from _lines(handle, path.name)
                else:
                    yield Document(path.name, handle.read())
        elif kind in ("csv", "tsv"):
            yield from _delimited(path, "\t" if kind == "tsv" else ",", reading)
        elif kind == "jsonl":
            yield from _jsonl(path, reading)
        else:
            yield from _parquet(path, reading)
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path.name} is not valid {reading.encoding} ({exc.reason} at byte {exc.start}); "
                              "set --encoding (e.g. --encoding latin-1)") from None


def started(documents: Iterator[Document]) -> Iterator[Document]:
    """Pull the first document now (so format errors surface before slow work), then yield them all."""
    first = next(documents, None)
    return documents if first is None else itertools.chain([first], documents)
