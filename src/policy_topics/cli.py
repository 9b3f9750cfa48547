"""Command line: ``policy-topics train [hydra overrides...]``.

This is the only layer that turns the library's typed errors into one-line messages and exit codes.
Overrides are checked against the composed config before Hydra runs, so a typo in a key or an option
name gets one line that names it and the choices, not a stack trace.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from policy_topics.errors import PolicyTopicsError
from policy_topics.paths import config_dir, register_resolvers
from policy_topics.tracking_server import tracking_server_command

USAGE = """usage: policy-topics COMMAND [options]

commands:
  train     train, evaluate and log a model; takes Hydra overrides, e.g.
            policy-topics train data=uscongress model=logreg features.word.ngram_range=[1,3]
            policy-topics train --multirun model=linearsvc,logreg,ridge
            policy-topics train --cfg job     (print the composed config)
  predict   code texts with a logged model: policy-topics predict --model MODEL [TEXT ...] [--input PATH]
  serve     serve a model over HTTP: policy-topics serve --model MODEL --port 8080
  promote   point an alias at a registered version: policy-topics promote NAME VERSION [--alias champion]
  models    list the registered models, their versions and aliases
  rerun     re-run a logged training run from its recorded config; says whether the metrics match
  tracking-server  a team's MLflow server on PostgreSQL: policy-topics tracking-server --host 0.0.0.0 --port 5000
  evaluate  score a model on a dataset, e.g. cross-domain: policy-topics evaluate data=nytimes model_ref=MODEL
  leaderboard  rank runs by a metric, diff two runs, plot per-topic F1: policy-topics leaderboard --sweep latest

MODEL is a run id, models:/NAME/VERSION, models:/NAME@ALIAS or NAME (its champion); without --model,
the one registered model that has the alias 'champion'. Run `policy-topics COMMAND --help` for options.
"""

DEBUG_ENV = "POLICY_TOPICS_DEBUG"

# Hydra flags that take a value; everything else that starts with '-' takes none.
_HYDRA_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c",
                      "--package", "-p", "--info", "-i", "--experimental-rerun"}


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def unexpected(exc: BaseException) -> None:
    """A bug or an unforeseen failure: one line, the traceback only on request."""
    import os

    if os.environ.get(DEBUG_ENV):
        raise exc
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    fail(f"unexpected {type(exc).__name__}: {first} (the MLflow run, if one was open, is marked FAILED; "
         f"set {DEBUG_ENV}=1 for the traceback)", 1)


def _terminate_as_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends a run like Ctrl-C does: marked KILLED, nothing half-written."""
    raise KeyboardInterrupt


def overrides_in(args: Sequence[str]) -> list[str]:
    """The Hydra overrides among the command-line arguments (flags and their values removed)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _HYDRA_VALUE_FLAGS and arg not in ("--info", "-i")
        else:
            out.append(arg)
    return out


def _first_choice(overrides: list[str]) -> list[str]:
    """Replace sweeps (``a,b``, ``range(...)``) with their first value, dropping Optuna intervals."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    single: list[str] = []
    for override in parsed:
        if not override.is_sweep_override():
            single.append(override.input_line)
            continue
        if override.is_interval_sweep():
            continue
        first = next(iter(override.sweep_string_iterator()), None)
        if first is not None:
            single.append(f"{override.get_key_element()}={first}")
    return single


def check_overrides(config_name: str, args: Sequence[str]) -> str | None:
    """Compose the config with the given overrides; a one-line problem description if it fails."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    from policy_topics.sweep import check_sweep

    try:
        overrides = _first_choice(overrides_in(args))
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
        if not {"--cfg", "-c", "--info", "-i", "--help", "-h"} & set(args):  # jobs will run
            multirun = bool({"-m", "--multirun"} & set(args)) or getattr(cfg.hydra.mode, "name", "") == "MULTIRUN"
            check_sweep(cfg, multirun)
    except MissingConfigException as exc:
        return _missing_option(exc)
    except (HydraException, OmegaConfBaseException) as exc:
        return _bad_override(exc)
    except PolicyTopicsError as exc:
        return str(exc)
    return None


def _missing_option(exc: Exception) -> str:
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    head = lines[0]
    options = [line for line in lines[1:] if not line.endswith(":") and " " not in line]
    group = ""
    if "Could not find '" in head:
        wanted = head.split("Could not find '", 1)[1].split("'", 1)[0]
        group, _, option = wanted.rpartition("/")
        return (f"unknown option {group}={option}; available {group} options: {', '.join(options) or 'none'}")
    return f"{head}{'; available: ' + ', '.join(options) if options else ''}"


def _bad_override(exc: Exception) -> str:
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ConfigKeyError | ConfigAttributeError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        key = getattr(cause, "full_key", None) or str(cause)
        return (f"unknown config key '{key}': check the spelling (`policy-topics train --cfg job` prints "
                f"every key), or add a new key with +{key}=VALUE")
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return f"invalid override: {first}"


def _quiet_libraries() -> None:
    """Keep the terminal to our stages: MLflow's INFO lines, progress bars and hint warnings go."""
    import os
    import warnings

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for module in ("mlflow", "datasets", "sklearn"):
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    warnings.filterwarnings("ignore", message=".*type hints? .*predict", category=UserWarning)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("policy_topics")
    package.handlers[:] = [handler]
    package.setLevel(logging.INFO)
    package.propagate = False
    for noisy in ("mlflow", "alembic", "datasets", "urllib3", "httpx", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def run_hydra_app(config_name: str, task: Callable[[Any], Any], prog: str, args: Sequence[str]) -> Any:
    """Validate ``args`` and hand them to a Hydra app that runs ``task(cfg)`` per job."""
    import hydra

    problem = check_overrides(config_name, args)
    if problem:
        fail(problem)

    @hydra.main(config_path=str(config_dir()), config_name=config_name, version_base="1.3")
    def app(cfg: Any) -> Any:
        _quiet_libraries()  # again: a launcher may run this job in a worker process (joblib, Ray)
        _configure_logging()
        try:
            return task(cfg)
        except PolicyTopicsError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted (the MLflow run, if one was open, is marked KILLED)", 130)
        except Exception as exc:
            from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

            if isinstance(exc, MissingMandatoryValue):
                key = getattr(exc, "full_key", "?")
                fail(f"{key} is required here and has no value; add {key}=... to the command")
            if isinstance(exc, OmegaConfBaseException):
                fail(f"config: {str(exc).splitlines()[0]}")
            unexpected(exc)

    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        return app()
    finally:
        sys.argv = saved


def train_task(cfg: Any) -> float | None:
    """One training job; returns validation macro-F1 for sweepers to maximise."""
    from policy_topics.training import run_training, summary

    result = run_training(cfg)
    print(summary(result))
    m = result.metrics
    return m.get("cv_macro_f1_mean", m.get("val_macro_f1", m.get("test_macro_f1")))


def evaluate_task(cfg: Any) -> float:
    """One evaluation job; returns the shared-topic macro-F1 (for sweeps over datasets or models)."""
    from policy_topics.evaluate_command import run_evaluation, summary

    result = run_evaluation(cfg)
    print(summary(result))
    return result.metrics["shared_macro_f1"]


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="run id, models:/NAME/VERSION, models:/NAME@ALIAS or NAME "
                                        "(default: the registered model with the alias 'champion')")
    parser.add_argument("--threshold", type=float, default=None,
                        help="top probability under which a text is flagged 'uncertain' (default 0.2)")


def _probability(value: float | None) -> None:
    if value is not None and not 0 <= value <= 1:
        fail(f"--threshold must be between 0 and 1, not {value}")


def predict_command(args: list[str]) -> None:
    from policy_topics import batch
    from policy_topics.registry import load, resolve

    parser = argparse.ArgumentParser(prog="policy-topics predict", description="Code texts with a logged model.")
    parser.add_argument("texts", nargs="*", help="texts to code")
    parser.add_argument("--input", "-i", help="a .txt (one text per line), .csv/.tsv/.jsonl/.parquet file, "
                                              "a folder of .txt files, or - for stdin")
    parser.add_argument("--input-format", choices=batch.INPUT_FORMATS)
    parser.add_argument("--column", default="text", help="text column or field of CSV/TSV/JSONL/Parquet input")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--output", "-o", help="output .csv or .jsonl file (default: JSONL on stdout)")
    parser.add_argument("--output-format", choices=("csv", "jsonl"))
    parser.add_argument("--top-k", type=int, default=3, help="how many topics to list per text")
    parser.add_argument("--explain", type=int, default=0, metavar="N", help="report the N n-grams that "
                        "pushed each decision most")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--no-progress", action="store_true")
    _model_options(parser)
    opts = parser.parse_args(args)
    _probability(opts.threshold)
    if not opts.texts and opts.input is None:
        fail("nothing to predict: give texts as arguments, or --input FILE|FOLDER|-")
    if opts.top_k < 1 or opts.explain < 0 or opts.batch_size < 1:
        fail("--top-k and --batch-size must be at least 1 and --explain at least 0")
    fmt = batch.output_format(opts.output, opts.output_format)
    # Read the first document before loading the model: a wrong column or encoding fails in a moment.
    documents = batch.started(batch.read_documents(opts.texts, opts.input, opts.column, opts.input_format,
                                                   opts.encoding))
    loaded = load(resolve(opts.model), opts.threshold)
    progress = not opts.no_progress and sys.stderr.isatty()
    with batch.atomic_output(opts.output) as handle:
        count = batch.predict_stream(loaded.predictor, documents, batch.RecordWriter(handle, fmt),
                                     opts.batch_size, opts.top_k, opts.explain, opts.threshold, progress)
    if opts.output:
        print(f"{count} predictions from {loaded.metadata['model_uri']} written to {opts.output}", file=sys.stderr)


def serve_command(args: list[str]) -> None:
    from policy_topics.serving import Limits, serve

    parser = argparse.ArgumentParser(prog="policy-topics serve", description="Serve a model over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-texts", type=int, default=1000, help="most texts per request")
    parser.add_argument("--max-bytes", type=int, default=1_000_000, help="largest request body")
    _model_options(parser)
    opts = parser.parse_args(args)
    _probability(opts.threshold)
    if opts.workers < 1 or opts.max_texts < 1 or opts.max_bytes < 1:
        fail("--workers, --max-texts and --max-bytes must be at least 1")
    serve(opts.model, opts.host, opts.port, opts.workers, Limits(opts.max_texts, opts.max_bytes), opts.threshold)


def promote_command(args: list[str]) -> None:
    from policy_topics.registry import CHAMPION, promote

    parser = argparse.ArgumentParser(prog="policy-topics promote",
                                     description="Point an alias (default: champion) at a registered model version.")
    parser.add_argument("name")
    parser.add_argument("version")
    parser.add_argument("--alias", default=CHAMPION)
    opts = parser.parse_args(args)
    uri = promote(opts.name, opts.version, opts.alias)
    print(f"{uri} -> version {opts.version}")


def models_command(args: list[str]) -> None:
    from policy_topics.registry import default_tracking_uri, tracking_client, version_table

    argparse.ArgumentParser(prog="policy-topics models",
                            description="List the registered models, their versions and aliases.").parse_args(args)
    uri = default_tracking_uri()
    rows = version_table(tracking_client(uri))
    print(f"registered models in {uri}")
    if not rows:
        print("  none yet: train one (policy-topics train registers it)")
        return
    print(f"  {'name':<28} {'version':>7}  {'aliases':<16} {'run id':<32}  test macro-F1")
    for row in rows:
        f1 = "-" if row["test_macro_f1"] is None else f"{row['test_macro_f1']:.3f}"
        print(f"  {row['name']:<28} {row['version']:>7}  {row['aliases'] or '-':<16} {row['run_id'] or '-':<32}  {f1}")


def rerun_command(args: list[str]) -> None:
    from policy_topics.rerun import rerun

    parser = argparse.ArgumentParser(prog="policy-topics rerun", description="Re-run a logged training run from "
                                     "its recorded config and report whether the metrics match (exit 4 if not).")
    parser.add_argument("run_id")
    opts = parser.parse_args(args)
    report = rerun(opts.run_id)
    print(report.render())
    if report.mismatched:
        raise SystemExit(4)


def leaderboard_command(args: list[str]) -> None:
    from policy_topics.leaderboard import command

    command(args)


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
}


def _exit_without_teardown() -> None:
    """End a finished training command without the interpreter's teardown: freeing the thousands of
    modules a run loads (MLflow, scikit-learn, pandas, matplotlib, SQLAlchemy...) took 1.3 s, and waiting
    for the idle fit workers 0.7 s. Everything is written and committed by now; the worker processes
    are stopped and the exit handlers run first, as on a normal exit."""
    import atexit

    from policy_topics.fit_workers import stop_workers

    stop_workers()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command = COMMANDS.get(args[0])
    if command is None:
        fail(f"unknown command '{args[0]}'; commands: {', '.join(COMMANDS)}")
    register_resolvers()
    _quiet_libraries()
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    if args[0] == "train":
        command(args[1:])
        single_run = not any(a in ("-m", "--multirun") or a.startswith("hydra.mode") for a in args)
        if argv is None and single_run:  # the console command (a sweep's launchers keep their own exit)
            _exit_without_teardown()
        return
    _configure_logging()
    try:
        command(args[1:])
    except PolicyTopicsError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()
    except Exception as exc:
        unexpected(exc)


if __name__ == "__main__":
    main()
