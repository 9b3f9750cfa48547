"""What the command line shows: one-line errors with exit codes, the terminal reporter that library code
talks through, and the quieting of libraries' own chatter. The only place that writes to the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from policy_topics.errors import PolicyTopicsError
from policy_topics.reporting import Reporter, use_reporter

DEBUG_ENV = "POLICY_TOPICS_DEBUG"
VERBOSE_ENV = "POLICY_TOPICS_VERBOSE"  # set by -v/--verbose; inherited by a sweep's worker processes
VERBOSE_FLAGS = ("-v", "--verbose")


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


class TerminalReporter(Reporter):
    """Lines on standard output, notes and warnings on standard error, progress as a tqdm bar on standard
    error, and a stop as the CLI's one-line error with the error's exit code."""

    def line(self, text: str) -> None:
        print(text, flush=True)

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=sys.stderr, flush=True)

    @contextmanager
    def progress(self, unit: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
        from tqdm import tqdm

        with tqdm(unit=unit, disable=not enabled, file=sys.stderr, mininterval=0.5) as bar:
            yield bar.update

    @contextmanager
    def muted(self) -> Iterator[None]:
        if is_verbose():
            yield
            return
        import io
        from contextlib import redirect_stderr, redirect_stdout

        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            yield

    def stop(self, error: PolicyTopicsError) -> NoReturn:
        fail(str(error), error.exit_code)


def unexpected(exc: BaseException) -> None:
    """A bug or an unforeseen failure: one line, the traceback only on request."""
    if os.environ.get(DEBUG_ENV):
        raise exc
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    fail(f"unexpected {type(exc).__name__}: {first} (the MLflow run, if one was open, is marked FAILED; "
         f"set {DEBUG_ENV}=1 for the traceback)", 1)


def terminate_as_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends a run like Ctrl-C does: marked KILLED, nothing half-written."""
    raise KeyboardInterrupt


def quiet_libraries() -> None:
    """Keep the terminal to our stages: MLflow's INFO lines, progress bars (MLflow's, Hugging Face's
    "Loading weights"), hint warnings and the resource tracker's "leaked semaphore" note at exit go, unless
    ``--verbose``. Set as environment variables too, so worker processes (fits, sweeps) inherit them."""
    import warnings

    if is_verbose():
        return
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning")
    for module in ("mlflow", "datasets", "sklearn"):
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    warnings.filterwarnings("ignore", message=".*type hints? .*predict", category=UserWarning)


def use_terminal() -> None:
    """Library output to the terminal: the terminal reporter, and the ``policy_topics`` logger (the model
    server's error log) on standard error; other libraries' loggers only for errors."""
    use_reporter(TerminalReporter())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("policy_topics")
    package.handlers[:] = [handler]
    package.setLevel(logging.INFO)
    package.propagate = False
    for noisy in ("mlflow", "alembic", "datasets", "urllib3", "httpx", "matplotlib", "sentence_transformers",
                  "transformers"):
        logging.getLogger(noisy).setLevel(logging.INFO if is_verbose() else logging.ERROR)
