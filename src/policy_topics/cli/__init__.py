"""Command line: ``policy-topics train [hydra overrides...]``.

This is the only layer that turns the library's typed errors into one-line messages and exit codes.
Overrides are checked against the composed config before Hydra runs, so a typo in a key or an option
name gets one line that names it and the choices, not a stack trace.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

from policy_topics.cli.commands import COMMANDS
from policy_topics.cli.output import (
    VERBOSE_ENV,
    VERBOSE_FLAGS,
    fail,
    quiet_libraries,
    terminate_as_interrupt,
    unexpected,
    use_terminal,
)
from policy_topics.errors import PolicyTopicsError
from policy_topics.paths import register_resolvers

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
  suggest   a coder sheet of the documents the model is least sure of (active learning):
            policy-topics suggest --model MODEL --input corpus.csv --n 100 --output sheet.csv
  sample    a seeded random sample of a target corpus as a coder sheet; code it, then measure the model there:
            policy-topics sample --input corpus.csv --n 200 --output sheet.csv
            policy-topics evaluate model_ref=MODEL coded_sample=sheet.csv

-v/--verbose (anywhere on the line) shows what the libraries print (MLflow, Hugging Face, progress bars).
MODEL is a run id, models:/NAME/VERSION, models:/NAME@ALIAS or NAME (its champion); without --model,
the one registered model that has the alias 'champion'. Run `policy-topics COMMAND --help` for options.
"""

DEBUG_ENV = "POLICY_TOPICS_DEBUG"


def _exit_without_teardown() -> None:
    """End a finished training command without the interpreter's teardown: freeing the thousands of
    modules a run loads (MLflow, scikit-learn, pandas, matplotlib, SQLAlchemy...) took 1.3 s, and waiting
    for the idle fit workers 0.7 s. Everything is written and committed by now; the worker processes
    are stopped and the exit handlers run first, as on a normal exit."""
    import atexit

    from policy_topics.jobs.fitting import stop_workers

    stop_workers()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in VERBOSE_FLAGS for a in args):  # anywhere on the line: the library's own output, shown
        os.environ[VERBOSE_ENV] = "1"
        args = [a for a in args if a not in VERBOSE_FLAGS]
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command = COMMANDS.get(args[0])
    if command is None:
        fail(f"unknown command '{args[0]}'; commands: {', '.join(COMMANDS)}")
    register_resolvers()
    quiet_libraries()
    signal.signal(signal.SIGTERM, terminate_as_interrupt)
    use_terminal()
    if args[0] == "train":
        command(args[1:])
        single_run = not any(a in ("-m", "--multirun") or a.startswith("hydra.mode") for a in args)
        if argv is None and single_run:  # the console command (a sweep's launchers keep their own exit)
            _exit_without_teardown()
        return
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
