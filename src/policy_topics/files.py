"""File helpers shared by the stages: telling a file's format from its name, opening text files (gzip or
not), writing a file so that readers never see half of it, and opening a Parquet file that must hold
given columns. Each problem is a typed error that names the file and the fix."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from policy_topics.errors import DataFormatError, DataSourceError

SUFFIX_FORMATS = {".txt": "txt", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
                  ".parquet": "parquet"}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def file_format(path: Path, declared: str | None, formats: Sequence[str], setting: str) -> str:
    """``declared`` if it is one of ``formats``, else the format the file name says (a compression suffix
    such as ``.gz`` ignored); ``setting`` is the option that fixes a wrong guess (``data.format``)."""
    if declared:
        if declared not in formats:
            raise DataFormatError(f"unknown {setting} '{declared}'; use one of: {', '.join(formats)}")
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    fmt = SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt not in formats:
        raise DataFormatError(f"cannot tell the format of {path.name} from its name; set {setting} to one of: "
                              f"{', '.join(formats)}")
    return str(fmt)


def open_text(path: Path, encoding: str) -> IO[str]:
    """A text file, or a gzip-compressed one (``.gz``), read with ``encoding`` and newlines kept."""
    if path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


@contextmanager
def atomic_file(path: Path, setting: str, binary: bool = False) -> Iterator[IO[Any]]:
    """A temp file beside ``path`` that becomes ``path`` only when the block succeeds, so a failure leaves
    no partial file behind. ``setting`` names the option that chose the path (for a missing folder)."""
    if not path.parent.is_dir():
        raise DataSourceError(f"folder {path.parent} does not exist; create it or choose another {setting}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: Path, data: bytes, setting: str = "path") -> None:
    """Write ``data`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, setting, binary=True) as handle:
        handle.write(data)


def parquet_file(path: Path, columns: Sequence[str], hint: str = "") -> Any:
    """A ``pyarrow.parquet.ParquetFile`` that has ``columns``; ``hint`` is appended to a missing-column
    message (the option that names the column, for example)."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataSourceError(f"Parquet file not found: {path}; give an existing .parquet file")
    try:
        file = pq.ParquetFile(path)
    except Exception as exc:
        raise DataFormatError(f"{path.name} is not a readable Parquet file ({exc}); check the file") from exc
    names = file.schema_arrow.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataFormatError(f"column '{missing[0]}' not found in {path.name}; columns found: "
                              f"{', '.join(names) or 'none'}{hint}")
    return file
