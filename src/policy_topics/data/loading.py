"""Read a dataset into a (text, label) table through Hugging Face ``datasets``.

``datasets`` caches what it builds; the cache goes to a temp dir that is removed afterwards, because
the project keeps its own cache of processed splits (see :mod:`policy_topics.data.prep`), and a failed
read must leave nothing behind.
"""

from __future__ import annotations

import csv
import gzip
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics.errors import DataFormatError
from policy_topics.files import file_format, open_text

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_BUILDERS = {"csv": "csv", "tsv": "csv", "jsonl": "json", "parquet": "parquet"}


@dataclass(frozen=True)
class ReadOptions:
    """How to read one file; mirrors the ``data`` config keys of the same names."""

    text_column: str
    label_column: str
    format: str | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"


def infer_format(path: Path, declared: str | None) -> str:
    return file_format(path, declared, FORMATS, "data.format")


def _delimiter(fmt: str, opts: ReadOptions) -> str:
    return opts.delimiter or ("\t" if fmt == "tsv" else ",")


def _builder_kwargs(fmt: str, opts: ReadOptions, columns: list[str]) -> dict[str, Any]:
    if fmt in ("csv", "tsv"):
        import datasets

        # Every column as text (the project parses labels itself): pandas' per-chunk type inference
        # would otherwise disagree between chunks on columns with a few odd values.
        features = datasets.Features({name: datasets.Value("string") for name in columns})
        return {"delimiter": _delimiter(fmt, opts), "encoding": opts.encoding, "features": features,
                "keep_default_na": False}
    if fmt == "jsonl":
        return {"encoding": opts.encoding}
    return {}


def check_not_empty(path: Path, fmt: str, opts: ReadOptions) -> list[str]:
    """Refuse an empty file, or a delimited file with a header and no rows, before ``datasets`` reads it
    (its own messages for these say nothing useful); the header's columns for delimited files."""
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path.name} is empty; give a file with a header line and one coded document per row")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:
            raise _read_error(path, fmt, opts, exc) from exc
        if rows == 0:
            raise DataFormatError(f"{path.name} has no rows; give a file with one coded document per row")
        return []
    try:
        with open_text(path, opts.encoding) as fh:
            if fmt == "jsonl":
                if not any(line.strip() for line in fh):
                    raise DataFormatError(f"{path.name} is empty (only blank lines); give one JSON object per line")
                return []
            csv.field_size_limit(2**31 - 1)  # one long text is still one field
            reader = csv.reader(fh, delimiter=_delimiter(fmt, opts))
            header = next(reader, [])
            if not any(cell.strip() for cell in header):
                raise DataFormatError(f"{path.name} is empty; give a file with a header line and one coded "
                                      "document per row")
            if not any(any(cell.strip() for cell in row) for row in reader):
                raise DataFormatError(f"{path.name} has a header ({', '.join(header)}) but no rows; add the coded "
                                      "documents below it, one per line")
            return header
    except UnicodeDecodeError as exc:
        raise _read_error(path, fmt, opts, exc) from exc
    except (OSError, EOFError, csv.Error, LookupError) as exc:
        raise DataFormatError(f"cannot read {path.name} ({exc}); check data.format and data.encoding") from exc


def read_table(path: Path, opts: ReadOptions) -> pd.DataFrame:
    """Read ``path`` with ``datasets`` and return its text and label columns as strings."""
    frame = _load(path, opts, {"text": opts.text_column, "label": opts.label_column})
    return select_columns(frame, path.name, opts)


def read_column(path: Path, role: str, opts: ReadOptions) -> pd.Series:
    """One column of a file read with ``datasets``: the ``text`` column (``opts.text_column``) of a file of
    texts, or the ``label`` column of a file of codes; as strings."""
    column = opts.text_column if role == "text" else opts.label_column
    return _load(path, opts, {role: column})[column].astype("string").rename(role)


def _load(path: Path, opts: ReadOptions, wanted: dict[str, str]) -> pd.DataFrame:
    fmt = infer_format(path, opts.format)
    columns = check_not_empty(path, fmt, opts)
    if fmt in ("csv", "tsv"):
        check_columns(columns, path.name, opts, wanted)
    import datasets  # slow import: only on the paths that read data

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="policy-topics-hf-") as cache:
        try:
            ds = datasets.load_dataset(
                _BUILDERS[fmt], data_files=str(path), split="train", cache_dir=cache,
                **_builder_kwargs(fmt, opts, columns),
            )
        except Exception as exc:  # datasets wraps reader errors in DatasetGenerationError
            raise _read_error(path, fmt, opts, exc) from exc
        frame = ds.to_pandas()
    check_columns(list(frame.columns), path.name, opts, wanted)
    return frame


def check_columns(columns: list[str], file_name: str, opts: ReadOptions, wanted: dict[str, str] | None = None) -> None:
    """Refuse a table that lacks the configured text or label column (or the ``wanted`` role -> column
    ones), listing the columns it has."""
    wanted = wanted or {"text": opts.text_column, "label": opts.label_column}
    for role, column in wanted.items():
        if column not in columns:
            found = ", ".join(map(str, columns)) or "none"
            hint = ""
            if len(columns) == 1 and len(wanted) > 1:
                hint = " (only one column: is data.delimiter right?)"
            raise DataFormatError(
                f"{role} column '{column}' not found in {file_name}; columns found: {found}{hint}; "
                f"set data.{role}_column to one of them"
            )


def select_columns(frame: pd.DataFrame, file_name: str, opts: ReadOptions) -> pd.DataFrame:
    """Keep the configured text and label columns, renamed to ``text`` and ``label``."""
    check_columns(list(frame.columns), file_name, opts)
    out = pd.DataFrame({"text": frame[opts.text_column], "label": frame[opts.label_column]})
    out["text"] = out["text"].astype("string")
    return out


def _read_error(path: Path, fmt: str, opts: ReadOptions, exc: BaseException) -> DataFormatError:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, UnicodeDecodeError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, UnicodeDecodeError) or "codec can't decode" in str(exc):
        where = locate_undecodable_line(path, opts.encoding)
        alt = "latin-1" if opts.encoding.replace("_", "-").lower() in ("utf-8", "utf8") else "utf-8"
        return DataFormatError(
            f"{path.name}: {where} is not valid {opts.encoding}; set data.encoding to the file's "
            f"encoding (e.g. data.encoding={alt})"
        )
    first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if root is not exc and str(root).strip():
        first = str(root).strip().splitlines()[-1]
    return DataFormatError(
        f"cannot read {path.name} as {fmt} ({first}); check data.format, data.delimiter and data.encoding"
    )


def locate_undecodable_line(path: Path, encoding: str) -> str:
    """Describe the first line of ``path`` that does not decode, e.g. ``line 17, byte 0xe9 at column 5``."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    raw.decode(encoding)
                except UnicodeDecodeError as err:
                    return f"line {number} (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
    except (OSError, EOFError):
        pass
    return "some bytes"


def read_hub(hub_id: str, subset: str | None, split: str, revision: str | None,
             opts: ReadOptions) -> tuple[pd.DataFrame, str]:
    """Load a Hugging Face Hub dataset split; returns the table and an identity for fingerprints."""
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(hub_id, name=subset, split=split, revision=revision)
    except Exception as exc:
        raise DataFormatError(
            f"cannot load Hub dataset '{hub_id}' (split {split}): {str(exc).strip().splitlines()[0]}; "
            "check data.hub_id, data.hub_subset and data.hub_split, and that the Hub (or its cache) is reachable"
        ) from exc
    identity = f"hub:{hub_id}:{subset}:{split}@{revision or ds._fingerprint}"
    return select_columns(ds.to_pandas(), hub_id, opts), identity
