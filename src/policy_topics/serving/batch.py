"""Batch prediction: documents from arguments, stdin, a file or a folder, streamed through the model in
batches and written as CSV or JSONL, so inputs larger than memory work.

Output files are written under a temp name and renamed when complete: a failed run leaves no partial
output behind.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from policy_topics.errors import DataFormatError, DataSourceError
from policy_topics.files import atomic_file, file_format, open_text, parquet_file
from policy_topics.reporting import reporter

Document = tuple[str, str]  # (id, text)
FIELDS = ["id", "text", "topic", "code", "probability", "status", "top_topics", "explanation"]
INPUT_FORMATS = ("txt", "csv", "tsv", "jsonl", "parquet")


def input_format(path: Path, declared: str | None) -> str:
    return file_format(path, declared, INPUT_FORMATS, "--input-format")


def _lines(handle: IO[str], name: str) -> Iterator[Document]:
    for number, line in enumerate(handle, start=1):
        yield f"{name}:{number}", line.rstrip("\r\n")


def _delimited(path: Path, column: str, delimiter: str, encoding: str) -> Iterator[Document]:
    with open_text(path, encoding) as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        if column not in (reader.fieldnames or []):
            raise DataFormatError(f"column '{column}' not found in {path.name}; columns found: "
                                  f"{', '.join(reader.fieldnames or []) or 'none'}; set --column to one of them")
        for number, row in enumerate(reader, start=1):
            yield f"{path.name}:{number}", row[column] or ""


def _jsonl(path: Path, column: str, encoding: str) -> Iterator[Document]:
    with open_text(path, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(
                    f"{path.name} line {number} is not JSON ({exc.msg}); one object per line") from None
            if not isinstance(record, dict) or column not in record:
                raise DataFormatError(f"{path.name} line {number} has no field '{column}'; set --column")
            value = record[column]
            yield f"{path.name}:{number}", "" if value is None else str(value)


def _parquet(path: Path, column: str) -> Iterator[Document]:
    parquet = parquet_file(path, [column], "; set --column to one of them")
    row = 0
    for batch in parquet.iter_batches(columns=[column], batch_size=4096):
        for value in batch.column(0).to_pylist():
            row += 1
            yield f"{path.name}:{row}", "" if value is None else str(value)


def read_documents(texts: list[str], source: str | None, column: str, fmt: str | None,
                   encoding: str) -> Iterator[Document]:
    """Documents in input order: argument texts, then the lines of stdin (``-``), a file or a folder."""
    for number, text in enumerate(texts, start=1):
        yield f"arg:{number}", text
    if source is None:
        return
    if source == "-":
        yield from _lines(io.TextIOWrapper(sys.stdin.buffer, encoding=encoding), "stdin")
        return
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataSourceError(f"no .txt files in the folder {path}; put one document per .txt file there")
        for file in files:
            yield file.name, file.read_text(encoding=encoding)
        return
    if not path.is_file():
        raise DataSourceError(f"input not found: {path}; give a file, a folder of .txt files, or - for stdin")
    kind = input_format(path, fmt)
    try:
        if kind == "txt":
            with open_text(path, encoding) as handle:
                yield from _lines(handle, path.name)
        elif kind in ("csv", "tsv"):
            yield from _delimited(path, column, "\t" if kind == "tsv" else ",", encoding)
        elif kind == "jsonl":
            yield from _jsonl(path, column, encoding)
        else:
            yield from _parquet(path, column)
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path.name} is not valid {encoding} ({exc.reason} at byte {exc.start}); "
                              "set --encoding (e.g. --encoding latin-1)") from None


def started(documents: Iterator[Document]) -> Iterator[Document]:
    """Pull the first document now (so format errors surface before slow work), then yield them all."""
    first = next(documents, None)
    return documents if first is None else itertools.chain([first], documents)


def batches(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for document in documents:
        batch.append(document)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def output_format(path: str | None, declared: str | None) -> str:
    fmt = declared or ("csv" if path and Path(path).suffix.lower() == ".csv" else "jsonl")
    if fmt not in ("csv", "jsonl"):
        raise DataFormatError(f"unknown --output-format '{fmt}'; use csv or jsonl")
    return fmt


@contextmanager
def atomic_output(path: str | None) -> Iterator[IO[str]]:
    """stdout, or a temp file next to ``path`` that becomes ``path`` only when the block succeeds."""
    if path is None:
        yield sys.stdout
        return
    with atomic_file(Path(path).expanduser(), "--output") as handle:
        yield handle


class RecordWriter:
    """Writes prediction records as CSV (nested fields as JSON) or JSONL."""

    def __init__(self, handle: IO[str], fmt: str) -> None:
        self.handle, self.fmt = handle, fmt
        self.csv = csv.DictWriter(handle, fieldnames=FIELDS) if fmt == "csv" else None
        if self.csv:
            self.csv.writeheader()

    def write(self, document: Document, record: dict[str, Any]) -> None:
        row = {"id": document[0], "text": document[1], **record}
        row.setdefault("explanation", [])
        if self.csv:
            self.csv.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v
                               for k, v in row.items()})
        else:
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def predict_stream(predictor: Any, documents: Iterable[Document], writer: RecordWriter, batch_size: int,
                   top_k: int, explain: int, threshold: float | None, progress: bool) -> int:
    """Predict and write batch by batch; returns the number of documents."""
    count = 0
    with reporter().progress(" docs", enabled=progress) as advance:
        for batch in batches(documents, batch_size):
            records = predictor.predict_records([t for _, t in batch], top_k=top_k, explain=explain,
                                                threshold=threshold)
            for document, record in zip(batch, records, strict=True):
                writer.write(document, record)
            count += len(batch)
            advance(len(batch))
    return count
