"""Batch prediction: documents (see :mod:`policy_topics.serving.documents`) streamed through the model in
batches and written as CSV, JSONL or Parquet, so inputs larger than memory work. Each output row holds the
document's id, the input columns kept, its text and the prediction (with ``paragraphs`` and ``topic_mix``
when coded by paragraph); nested fields (alternatives, explanations, paragraphs) are JSON in CSV and Parquet.

Output files are written under a temp name and renamed when complete: a failed run leaves no partial
output behind.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from policy_topics.errors import DataFormatError
from policy_topics.files import atomic_file
from policy_topics.reporting import reporter
from policy_topics.serving.documents import Document
from policy_topics.serving.segments import SEGMENT_FIELDS, add_paragraphs

PREDICTION_FIELDS = ["topic", "code", "probability", "status", "top_topics", "explanation"]
OUTPUT_FORMATS = ("csv", "jsonl", "parquet")
_SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_SAME_AS_INPUT = {"csv": "csv", "tsv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def batches(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for document in documents:
        batch.append(document)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def output_format(path: str | None, declared: str | None, input_kind: str | None = None) -> str:
    """``--output-format``, else the output file's suffix, else the input's own format (a CSV gives a CSV,
    a Parquet file a Parquet file), else JSONL. On standard output, never Parquet."""
    fmt = declared or (_SUFFIX_FORMATS.get(Path(path).suffix.lower()) if path else None) \
        or _SAME_AS_INPUT.get(input_kind or "", "jsonl")
    if fmt not in OUTPUT_FORMATS:
        raise DataFormatError(f"unknown --output-format '{fmt}'; use {', '.join(OUTPUT_FORMATS)}")
    if fmt == "parquet" and path is None:
        if declared:
            raise DataFormatError("Parquet cannot go to the terminal; add --output FILE.parquet")
        return "jsonl"
    return fmt


@contextmanager
def atomic_output(path: str | None, binary: bool = False) -> Iterator[IO[Any]]:
    """stdout, or a temp file next to ``path`` that becomes ``path`` only when the block succeeds."""
    if path is None:
        yield sys.stdout
        return
    with atomic_file(Path(path).expanduser(), "--output", binary=binary) as handle:
        yield handle


def _row(document: Document, record: dict[str, Any]) -> dict[str, Any]:
    """id, the kept input columns (renamed ``NAME_input`` where they clash with ours), text, prediction."""
    ours = {"id", "text", *PREDICTION_FIELDS}
    kept = {(f"{k}_input" if k in ours else k): v for k, v in document.kept.items()}
    return {"id": document.id, **kept, "text": document.text, **{k: record.get(k, []) for k in PREDICTION_FIELDS},
            **{k: record[k] for k in SEGMENT_FIELDS if k in record}}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v for k, v in row.items()}


class RecordWriter:
    """Writes prediction rows as CSV, JSONL or Parquet (one row group per batch). The columns are those of
    the first row: documents of one input share their kept columns."""

    def __init__(self, handle: IO[Any], fmt: str) -> None:
        self.handle, self.fmt = handle, fmt
        self.columns: list[str] | None = None
        self._csv: csv.DictWriter | None = None
        self._parquet: Any = None
        self._pending: list[dict[str, Any]] = []

    def write(self, document: Document, record: dict[str, Any]) -> None:
        row = _row(document, record)
        if self.columns is None:
            self.columns = list(row)
        if self.fmt == "jsonl":
            self.handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        elif self.fmt == "csv":
            if self._csv is None:
                self._csv = csv.DictWriter(self.handle, fieldnames=self.columns, extrasaction="ignore")
                self._csv.writeheader()
            self._csv.writerow(_flat(row))
        else:
            self._pending.append(_flat(row))

    def flush(self) -> None:
        """Write the rows kept for Parquet as one row group (every column as text, nested fields as JSON)."""
        if self.fmt != "parquet" or not self._pending:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self.columns is not None
        table = pa.table({c: pa.array([None if r.get(c) is None else str(r.get(c)) for r in self._pending],
                                      type=pa.string()) for c in self.columns})
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.handle, table.schema)
        self._parquet.write_table(table)
        self._pending = []

    def close(self) -> None:
        self.flush()
        if self._parquet is not None:
            self._parquet.close()


def predict_stream(predictor: Any, documents: Iterable[Document], writer: RecordWriter, batch_size: int,
                   top_k: int, explain: int, threshold: float | None, progress: bool, tally: Any = None,
                   segment: str | None = None) -> int:
    """Predict and write batch by batch; returns the number of documents. ``tally``
    (:class:`policy_topics.models.familiarity.Tally`) counts the texts' unknown words and confidence;
    ``segment="paragraphs"`` adds each document's paragraphs and topic mix
    (:mod:`policy_topics.serving.segments`)."""
    count = 0
    with reporter().progress(" docs", enabled=progress) as advance:
        for batch in batches(documents, batch_size):
            records = predictor.predict_records([d.text for d in batch], top_k=top_k, explain=explain,
                                                threshold=threshold)
            if segment == "paragraphs":
                add_paragraphs(predictor, [d.text for d in batch], records, top_k, explain, threshold)
            if tally is not None:
                tally.add([d.text for d in batch], [r["probability"] for r in records], predictor.clean)
            for document, record in zip(batch, records, strict=True):
                writer.write(document, record)
            writer.flush()
            count += len(batch)
            advance(len(batch))
    writer.close()
    return count
