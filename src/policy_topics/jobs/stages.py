"""Stage lines: each stage of a job reported as it finishes, with its wall time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from policy_topics.reporting import reporter


@dataclass
class Stages:
    """Times each stage and reports it as it finishes; ``timings`` keeps the seconds for the run's metrics."""

    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, str]]:
        """Time the block; a ``detail`` the block puts in the yielded dict goes on the stage's line."""
        note: dict[str, str] = {}
        start = time.perf_counter()
        yield note
        self.timings[name] = elapsed = time.perf_counter() - start
        detail = f"  {note['detail']}" if note.get("detail") else ""
        reporter().line(f"  {name:<22} {elapsed:6.2f} s{detail}")

    def record(self, name: str, seconds: float, detail: str = "") -> None:
        """A step timed elsewhere (in a worker process), reported under the stage that ran it."""
        self.timings[name] = seconds
        reporter().line(f"    {name:<20} {seconds:6.2f} s{'  ' + detail if detail else ''}")
