"""``policy-topics suggest``: a coder sheet of the documents whose codes should help the model most."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def suggest_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-topics suggest",
        description="Active learning: write a coder sheet of the uncoded documents the model is least sure of "
                    "(smallest margin between its two best topics), spread over the corpus, never two of the same "
                    "text, with the model's best guesses beside each. Code it, then train again with "
                    "data.extra_coded=[SHEET.csv].")
    parser.add_argument("--model", help="run id, models:/NAME/VERSION, models:/NAME@ALIAS or NAME "
                                        "(default: the registered model with the alias 'champion')")
    parser.add_argument("--input", "-i", required=True, help="the uncoded corpus: a .csv/.tsv/.jsonl/.parquet "
                                                             "file, or a .txt file of one document per line")
    parser.add_argument("--column", default="text", help="text column or field of the input (default text)")
    parser.add_argument("--id-column", help="column whose values are the sheet's ids (default: file:row)")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--n", type=int, default=100, help="documents to suggest (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the diversity step (default 0)")
    parser.add_argument("--output", "-o", required=True, help="the coder sheet to write, SHEET.csv (its manifest "
                                                              "SHEET.manifest.json is written beside it)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="CODED_SHEET",
                        help="coded sheets whose documents are not suggested again")
    return parser


def suggest_command(args: list[str]) -> None:
    from policy_topics.jobs.suggest import suggest
    from policy_topics.serving.documents import Reading, read_documents, started

    opts = suggest_parser().parse_args(args)
    source = Path(opts.input).expanduser()
    reading = Reading(opts.column, opts.id_column, [], opts.encoding, lines=True)
    docs = started(read_documents([], str(source), reading))  # a wrong column fails before the model loads
    found = suggest(opts.model, docs, opts.n, opts.seed, Path(opts.output).expanduser(),
                    [Path(p).expanduser() for p in opts.exclude], source if source.is_file() else None)
    excluded = f", {found.excluded:,} left out as already coded" if found.excluded else ""
    print(f"{found.picked} of {found.pool:,} documents suggested by {found.model}{excluded}: median margin "
          f"{found.median_margin:.2f} between the two best topics (the corpus: {found.pool_median_margin:.2f})",
          file=sys.stderr)
    print(f"coder sheet written to {found.sheet}; code it, then: policy-topics train "
          f"data.extra_coded=[{found.sheet}]", file=sys.stderr)
