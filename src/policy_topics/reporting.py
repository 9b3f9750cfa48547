"""How library code talks to the user: through one reporter, which the command line owns.

Library modules never print. They hand lines, warnings and progress to :func:`reporter`; the CLI
installs a reporter that writes to the terminal (``policy_topics.cli.output``), and a program that uses
the library gets the default one, which passes everything to the ``policy_topics`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from policy_topics.errors import PolicyTopicsError

_log = logging.getLogger("policy_topics")


class Reporter:
    """The default reporter: lines and warnings to the ``policy_topics`` logger, no progress bars, and
    errors raised as they are."""

    def line(self, text: str) -> None:
        """A stage line or a result (the CLI's standard output)."""
        _log.info(text)

    def note(self, text: str) -> None:
        """A remark beside the results, such as where a file was written (the CLI's standard error)."""
        _log.info(text)

    def warn(self, text: str) -> None:
        """Something the user should know that does not stop the job."""
        _log.warning("warning: %s", text)

    @contextmanager
    def progress(self, unit: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
        """A counter to advance by the number of items done (``unit`` names them)."""
        yield lambda n: None

    @contextmanager
    def muted(self) -> Iterator[None]:
        """A block whose own prints (a library's "Successfully registered model", say) the user did not ask
        for; the default reporter lets them through, the CLI's keeps them for ``--verbose``."""
        yield

    def stop(self, error: PolicyTopicsError) -> NoReturn:
        """End the command with ``error``, even from code whose caller swallows exceptions (Hydra's
        callbacks turn them into warnings)."""
        raise error


_current: list[Reporter] = [Reporter()]


def reporter() -> Reporter:
    """The reporter in use."""
    return _current[0]


def use_reporter(new: Reporter) -> None:
    """Install ``new`` for the rest of the process (the CLI does this once per command or job)."""
    _current[0] = new
