"""``policy-topics sample``: a random (or stratified) validation sample of a target corpus, as a coder sheet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def sample_parser() -> argparse.ArgumentParser:
    from policy_topics.serving.documents import INPUT_FORMATS

    parser = argparse.ArgumentParser(
        prog="policy-topics sample",
        description="Draw a seeded random sample of a corpus the model has not seen and write it as a coder sheet "
                    "(id, text, an empty code column). Code it, then measure the model on that corpus with "
                    "policy-topics evaluate model_ref=MODEL coded_sample=SHEET.csv.")
    parser.add_argument("--input", "-i", required=True, help="the corpus: a .csv/.tsv/.jsonl/.parquet file (or a "
                                                             ".txt file, one document per line)")
    parser.add_argument("--input-format", choices=INPUT_FORMATS)
    parser.add_argument("--column", default="text", help="text column or field of the input (default text)")
    parser.add_argument("--id-column", help="column whose values are the sheet's ids (default: the column 'id' "
                                            "when there is one, else file:row)")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--n", type=int, default=200, help="documents to sample (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0); the same seed and a "
                                                            "larger --n give a sample holding this one")
    parser.add_argument("--stratify", action="store_true", help="sample each topic the model predicts in "
                        "proportion to its size, at least one document each (needs --model)")
    parser.add_argument("--model", help="run id, models:/NAME/VERSION, models:/NAME@ALIAS or NAME: the model "
                                        "whose predicted topics --stratify and --show-guesses use")
    parser.add_argument("--show-guesses", action="store_true", help="add the model's best three guesses to the "
                        "sheet (left out by default, so that coders are not anchored by them)")
    parser.add_argument("--output", "-o", required=True, help="the coder sheet to write, SHEET.csv (its manifest "
                                                              "SHEET.manifest.json is written beside it)")
    return parser


def sample_command(args: list[str]) -> None:
    from policy_topics.jobs.sample import SampleRequest, run_sample

    opts = sample_parser().parse_args(args)
    result = run_sample(SampleRequest(
        opts.input, Path(opts.output).expanduser(), opts.n, opts.seed, opts.stratify, opts.model, opts.show_guesses,
        opts.column, opts.id_column, opts.encoding, opts.input_format))
    skipped = f" ({result.empty:,} empty texts skipped)" if result.empty else ""
    how = f"stratified over {len(result.strata)} predicted topics" if result.strata else "at random"
    print(f"{result.n} of {result.corpus_size:,} documents sampled {how}{skipped}", file=sys.stderr)
    print(f"coder sheet written to {result.sheet} (manifest {result.manifest.name}); fill its code column, then: "
          f"policy-topics evaluate model_ref=MODEL coded_sample={result.sheet}", file=sys.stderr)
