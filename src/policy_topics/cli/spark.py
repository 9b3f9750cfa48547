"""``policy-topics predict --engine spark``: the predict flags that make sense on Spark, checked, then
:func:`policy_topics.serving.spark.run`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from policy_topics.cli.output import fail

# Flags of the batch engine that Spark does not do, with what to do instead.
_BATCH_ONLY = {"texts": "texts as arguments", "lines": "--lines",
               "segment": "--segment paragraphs", "id_column": "--id-column (every input column is kept)",
               "keep": "--keep (every input column is kept)", "input_format": "--input-format (Parquet only)",
               "output_format": "--output-format (a folder of Parquet files)"}


def predict_spark(opts: argparse.Namespace) -> None:
    from policy_topics.serving.spark import run

    used = [flag for key, flag in _BATCH_ONLY.items() if getattr(opts, key)]
    if opts.explain:
        used.append("--explain")
    if used:
        fail(f"--engine spark does not take {used[0]}; use the batch engine (no --engine) for that")
    if opts.input in (None, "-") or opts.output is None:
        fail("--engine spark needs --input PARQUET_FILE|FOLDER|GLOB and --output FOLDER")
    if opts.top_k < 1:
        fail("--top-k must be at least 1")
    count, loaded, master = run(opts.model, opts.input, Path(opts.output).expanduser(), opts.column, opts.master,
                                opts.top_k, opts.threshold)
    print(f"{count} predictions from {loaded} on Spark {master} written to {opts.output}", file=sys.stderr)
