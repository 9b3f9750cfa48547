"""The argparse commands: predict, serve, promote, models, rerun, leaderboard. Each parses its flags,
checks them, calls the library and reports through the terminal reporter.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policy_topics.cli.hydra_app import evaluate_task, run_hydra_app, train_task
from policy_topics.cli.output import fail
from policy_topics.cli.sample import sample_command, sample_parser
from policy_topics.cli.suggest import suggest_command, suggest_parser
from policy_topics.errors import ConfigError, TrackingError
from policy_topics.files import write_atomic
from policy_topics.paths import home_dir


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="run id, models:/NAME/VERSION, models:/NAME@ALIAS or NAME "
                                        "(default: the registered model with the alias 'champion')")
    parser.add_argument("--threshold", type=float, default=None,
                        help="top probability under which a text is flagged 'uncertain' (default: the model's own "
                             "auto-coding threshold, chosen at training; 0.2 for a model without one)")
    parser.add_argument("--threshold-from", metavar="EVAL_RUN_ID",
                        help="the threshold an evaluation on a coded sample of the target corpus chose (policy-topics "
                             "evaluate coded_sample=...); without --model, the model it evaluated")


def _probability(value: float | None) -> None:
    if value is not None and not 0 <= value <= 1:
        fail(f"--threshold must be between 0 and 1, not {value}")


def _threshold_choice(opts: argparse.Namespace) -> str | None:
    """With ``--threshold-from``: set ``opts.threshold`` (and ``opts.model`` when not given) from that evaluation
    run, and return the line that says so."""
    if opts.threshold_from is None:
        return None
    from policy_topics.jobs.coded_sample import threshold_from
    from policy_topics.tracking.registry import default_tracking_uri, resolve

    if opts.threshold is not None:
        fail("give --threshold or --threshold-from, not both")
    chosen = threshold_from(opts.threshold_from, default_tracking_uri())
    if opts.model is None:
        opts.model = chosen.model
    elif resolve(opts.model).run_id != chosen.model_run_id:
        fail(f"evaluation run {chosen.run_id} chose its threshold for {chosen.model}, not for {opts.model}; drop "
             "--model to use that model, or evaluate this one on the coded sample")
    opts.threshold = chosen.threshold
    return chosen.note


def predict_parser() -> argparse.ArgumentParser:
    from policy_topics.serving import batch, documents

    parser = argparse.ArgumentParser(prog="policy-topics predict", description="Code texts with a logged model.")
    parser.add_argument("texts", nargs="*", help="texts to code")
    parser.add_argument("--input", "-i", help="a .txt file (one document; --lines: one per line), a .csv/.tsv/"
                                              ".jsonl/.parquet file, a folder of .txt files, or - for stdin "
                                              "(one document per line)")
    parser.add_argument("--input-format", choices=documents.INPUT_FORMATS)
    parser.add_argument("--column", default="text", help="text column or field of CSV/TSV/JSONL/Parquet input")
    parser.add_argument("--id-column", help="column whose values are the output ids (default: file:line)")
    parser.add_argument("--keep", metavar="COL[,COL...]|none",
                        help="input columns to copy into the output (default: all of them)")
    parser.add_argument("--lines", action="store_true", help="a .txt file holds one document per line")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--output", "-o", help="output .csv, .jsonl or .parquet file (default: standard output)")
    parser.add_argument("--output-format", choices=batch.OUTPUT_FORMATS,
                        help="default: the output file's suffix, else the input's format (CSV in, CSV out), "
                             "else JSONL")
    parser.add_argument("--top-k", type=int, default=3, help="how many topics to list per text")
    parser.add_argument("--explain", type=int, default=0, metavar="N", help="report the N words and phrases "
                        "(or the sentence embedding) that pushed each decision most")
    parser.add_argument("--segment", choices=["paragraphs"], help="also code each paragraph of a document (text "
                        "between blank lines, else lines): adds its paragraphs' topics and its topic mix (share of "
                        "the text by topic)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--engine", choices=["batch", "spark"], default="batch", help="spark: code a Parquet file, "
                        "folder or glob on Spark (pip install 'policy-topics[spark]'); --output is then a folder")
    parser.add_argument("--master", help="Spark master for --engine spark, e.g. local[2] or spark://HOST:7077 "
                                         "(default: conf/spark/default.yaml's, local[*])")
    _model_options(parser)
    return parser


def predict_command(args: list[str]) -> None:
    from pathlib import Path

    from policy_topics.serving import batch, documents
    from policy_topics.tracking.registry import load, resolve

    opts = predict_parser().parse_args(args)
    _probability(opts.threshold)
    chosen = _threshold_choice(opts)
    if opts.engine == "spark":
        from policy_topics.cli.spark import predict_spark

        return predict_spark(opts)
    if not opts.texts and opts.input is None:
        fail("nothing to predict: give texts as arguments, or --input FILE|FOLDER|-")
    if opts.top_k < 1 or opts.explain < 0 or opts.batch_size < 1:
        fail("--top-k and --batch-size must be at least 1 and --explain at least 0")
    keep = None if opts.keep is None else [c for c in opts.keep.split(",") if c and opts.keep != "none"]
    reading = documents.Reading(opts.column, opts.id_column, keep, opts.encoding, opts.lines)
    source = Path(opts.input).expanduser() if opts.input not in (None, "-") else None
    kind = documents.input_format(source, opts.input_format) if source is not None and source.is_file() else None
    fmt = batch.output_format(opts.output, opts.output_format, kind)
    # Read the first document before loading the model: a wrong column or encoding fails in a moment.
    docs = documents.started(documents.read_documents(opts.texts, opts.input, reading, opts.input_format))
    loaded = load(resolve(opts.model), opts.threshold)
    progress = not opts.no_progress and sys.stderr.isatty()
    tally = loaded.predictor.tally()
    with batch.atomic_output(opts.output, binary=fmt == "parquet") as handle:
        count = batch.predict_stream(loaded.predictor, docs, batch.RecordWriter(handle, fmt),
                                     opts.batch_size, opts.top_k, opts.explain, opts.threshold, progress, tally,
                                     opts.segment)
    where = f" written to {opts.output}" if opts.output else ""
    print(f"{count} predictions from {loaded.metadata['loaded']}{where}; {chosen or loaded.predictor.threshold_note()}",
          file=sys.stderr)
    unfamiliar = loaded.predictor.unfamiliar(tally)
    if unfamiliar:
        print(f"warning: {unfamiliar}", file=sys.stderr)


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policy-topics serve", description="Serve a model over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-texts", type=int, default=1000, help="most texts per request")
    parser.add_argument("--max-bytes", type=int, default=1_000_000, help="largest request body")
    parser.add_argument("--token-file", help="access tokens, one per line, re-read when the file changes; with "
                        "tokens (here or in POLICY_TOPICS_SERVE_TOKENS) every path but /health needs one")
    parser.add_argument("--open-access", action="store_true", help="serve a non-loopback --host without access "
                        "tokens (refused otherwise), e.g. behind a proxy that checks access")
    parser.add_argument("--access-log", metavar="FILE|-", help="append one JSON line per request (time, path, "
                        "status, number of texts, latency) to FILE, or - for standard error (default: none)")
    parser.add_argument("--log-texts", action="store_true", help="put the texts themselves into the access log")
    _model_options(parser)
    return parser


def serve_command(args: list[str]) -> None:
    from policy_topics.serving.http import Limits, serve

    opts = serve_parser().parse_args(args)
    _probability(opts.threshold)
    chosen = _threshold_choice(opts)
    if chosen:
        print(chosen, file=sys.stderr)
    if opts.workers < 1 or opts.max_texts < 1 or opts.max_bytes < 1:
        fail("--workers, --max-texts and --max-bytes must be at least 1")
    if opts.log_texts and not opts.access_log:
        fail("--log-texts needs --access-log FILE|-")
    access = {"token_file": opts.token_file, "access_log": opts.access_log, "log_texts": opts.log_texts,
              "open_access": opts.open_access}
    serve(opts.model, opts.host, opts.port, opts.workers, Limits(opts.max_texts, opts.max_bytes), opts.threshold,
          access)


def promote_parser() -> argparse.ArgumentParser:
    from policy_topics.tracking.registry import CHAMPION

    parser = argparse.ArgumentParser(prog="policy-topics promote",
                                     description="Point an alias (default: champion) at a registered model version.")
    parser.add_argument("name")
    parser.add_argument("version")
    parser.add_argument("--alias", default=CHAMPION)
    return parser


def promote_command(args: list[str]) -> None:
    from policy_topics.tracking.registry import promote

    opts = promote_parser().parse_args(args)
    uri = promote(opts.name, opts.version, opts.alias)
    print(f"{uri} -> version {opts.version}")


def models_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="policy-topics models",
                                   description="List the registered models, their versions and aliases.")


def models_command(args: list[str]) -> None:
    from policy_topics.tracking.registry import default_tracking_uri, tracking_client, version_table

    models_parser().parse_args(args)
    uri = default_tracking_uri()
    rows = version_table(tracking_client(uri))
    print(f"registered models in {uri}")
    if not rows:
        print("  none yet: train one (policy-topics train registers it)")
        return
    print(f"  {'name':<28} {'version':>7}  {'aliases':<16} {'run id':<32}  macro-F1")
    for row in rows:
        f1 = "-" if row["macro_f1"] is None else f"{row['macro_f1']:.3f} ({row['scored_on']})"
        print(f"  {row['name']:<28} {row['version']:>7}  {row['aliases'] or '-':<16} {row['run_id'] or '-':<32}  {f1}")


def rerun_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policy-topics rerun", description="Re-run a logged training run from "
                                     "its recorded config and report whether the metrics match (exit 4 if not).")
    parser.add_argument("run_id")
    return parser


def rerun_command(args: list[str]) -> None:
    from policy_topics.jobs.rerun import rerun

    opts = rerun_parser().parse_args(args)
    report = rerun(opts.run_id)
    print(report.render())
    if report.mismatched:
        raise SystemExit(4)


def leaderboard_command(args: list[str]) -> None:
    from policy_topics.search.leaderboard import (
        diff,
        log_plot,
        per_topic_f1,
        plot,
        rank,
        render,
        searched_keys,
        select,
        table,
    )
    from policy_topics.tracking.registry import default_tracking_uri, tracking_client

    opts = leaderboard_parser().parse_args(args)
    if opts.top < 1:
        raise ConfigError("--top must be at least 1")
    out = Path(opts.plot).expanduser() if opts.plot else None
    if out is not None and (out.suffix.lower() != ".png" or not out.parent.is_dir()):
        raise ConfigError(f"--plot needs a .png file in an existing folder, not '{opts.plot}'")
    uri = default_tracking_uri()
    client = tracking_client(uri)
    scope = select(client, opts.experiment, opts.sweep)
    if opts.diff:
        print(diff(client, *opts.diff, scope))
        return
    ranked = rank(scope.runs, opts.metric)[: opts.top]
    frame = table(ranked, opts.metric, searched_keys(scope.parent))
    print(f"{scope.label}: {len(ranked)} of {len(scope.runs)} runs by {opts.metric} ({uri})")
    print(render(frame))
    if out is not None:
        topics, split = per_topic_f1(client, ranked, opts.metric)
        title = f"Per-topic F1 ({split} split) of the top {topics.shape[1]} runs by {opts.metric}\n{scope.label}"
        write_atomic(out, plot(topics, title))
        run_id = log_plot(client, scope, out, frame)
        print(f"plot written to {out} and logged to run {run_id} (artifacts leaderboard/)")


def leaderboard_parser() -> argparse.ArgumentParser:
    from policy_topics.search.trials import OBJECTIVE

    parser = argparse.ArgumentParser(prog="policy-topics leaderboard",
                                     description="Rank runs by a metric, diff two runs, plot per-topic F1.")
    parser.add_argument("--experiment", "-e", help="experiment name (default: the only one with runs)")
    parser.add_argument("--sweep", "-s", metavar="PARENT_RUN_ID|latest", help="rank the trials of one sweep")
    parser.add_argument("--metric", "-m", default=OBJECTIVE,
                        help=f"metric to sort by, highest first (default {OBJECTIVE})")
    parser.add_argument("--top", "-n", type=int, default=10, help="how many runs to list and plot (default 10)")
    parser.add_argument("--diff", nargs=2, metavar=("RUN_A", "RUN_B"), help="show where two runs' configs differ")
    parser.add_argument("--plot", metavar="OUT.png", help="write a per-topic F1 heatmap of the top runs (and log it)")
    return parser


def tracking_server_command(args: list[str]) -> None:
    """``policy-topics tracking-server [options] [-- mlflow server options]``."""
    from policy_topics.tracking.server import run

    split = args.index("--") if "--" in args else len(args)
    ours, extra = args[:split], args[split + 1:]
    opts = tracking_server_parser().parse_args(ours)
    if opts.workers < 1:
        raise TrackingError("--workers must be at least 1")
    folder = opts.dir or home_dir() / "tracking-server"
    run(folder, opts.backend_store_uri, opts.artifacts_destination, opts.host, opts.port, opts.workers,
        opts.postgres_port, extra)


def tracking_server_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-topics tracking-server",
        description="Run a shared MLflow tracking server: runs and registry in PostgreSQL, artifacts proxied "
                    "from a folder or bucket. Options after -- go to `mlflow server` unchanged.")
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder for the PostgreSQL cluster and the artifacts (default: $POLICY_TOPICS_HOME/"
                             "tracking-server)")
    parser.add_argument("--backend-store-uri",
                        help="an existing database, e.g. postgresql+psycopg2://user:pw@db/mlflow (default: a "
                             "PostgreSQL cluster of its own in DIR/postgres)")
    parser.add_argument("--artifacts-destination", help="where artifacts go: a folder, or s3://..., gs://... "
                                                        "(default: DIR/artifacts)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for the team's network; "
                                                            "then add -- --allowed-hosts HOST:PORT)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4, help="uvicorn workers of the MLflow server (default 4)")
    parser.add_argument("--postgres-port", type=int, default=5432, help="port of its own PostgreSQL (127.0.0.1 only)")
    return parser



COMMANDS: dict[str, Callable[[list[str]], Any]] = {
    "train": lambda args: run_hydra_app("train", train_task, "policy-topics train", args),
    "predict": predict_command,
    "serve": serve_command,
    "promote": promote_command,
    "models": models_command,
    "rerun": rerun_command,
    "tracking-server": tracking_server_command,
    "evaluate": lambda args: run_hydra_app("evaluate", evaluate_task, "policy-topics evaluate", args),
    "leaderboard": leaderboard_command,
    "suggest": suggest_command,
    "sample": sample_command,
}

# The argparse parser of each argparse command, built without running it (the documentation's command
# reference is generated from these). `train` and `evaluate` are Hydra apps: their arguments are overrides.
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "predict": predict_parser,
    "serve": serve_parser,
    "promote": promote_parser,
    "models": models_parser,
    "rerun": rerun_parser,
    "tracking-server": tracking_server_parser,
    "leaderboard": leaderboard_parser,
    "suggest": suggest_parser,
    "sample": sample_parser,
}
