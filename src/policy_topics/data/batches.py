"""Read a split (a Parquet file or a ``datasets`` dataset) as (texts, labels) batches, one at a time,
so a corpus larger than memory can be hashed and scored batch by batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from policy_topics.errors import ConfigError, DataFormatError
from policy_topics.files import parquet_file

Source = Path | str | Any  # a Parquet file, or a datasets Dataset / IterableDataset


def iter_batches(source: Source, batch_size: int, text_column: str = "text",
                 label_column: str = "label") -> Iterator[tuple[list[str], np.ndarray]]:
    """(texts, labels) batches of at most ``batch_size`` rows, read one at a time: Arrow record batches
    of a Parquet file, or batches of a ``datasets`` dataset (memory-mapped or streamed)."""
    if int(batch_size) < 1:
        raise ConfigError(f"batch size must be at least 1, not {batch_size}")
    if isinstance(source, str | os.PathLike):
        file = parquet_file(Path(source), (text_column, label_column))
        for batch in file.iter_batches(batch_size=int(batch_size), columns=[text_column, label_column]):
            yield ([t if t is not None else "" for t in batch.column(0).to_pylist()],
                   np.asarray(batch.column(1).to_numpy(zero_copy_only=False), dtype=np.int64))
        return
    if not hasattr(source, "iter"):
        raise DataFormatError(f"cannot stream batches from a {type(source).__name__}; give a Parquet file "
                              "or a datasets Dataset/IterableDataset")
    columns = getattr(source, "column_names", None)
    for column in (text_column, label_column):
        if columns is not None and column not in columns:
            raise DataFormatError(f"column '{column}' not found in the dataset; columns found: {', '.join(columns)}")
    for batch in source.iter(batch_size=int(batch_size)):
        yield ([t if t is not None else "" for t in batch[text_column]],
               np.asarray(batch[label_column], dtype=np.int64))
