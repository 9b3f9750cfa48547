"""A bounded HTTP load generator for loopback benchmarks and the CI load test.

Client threads with one keep-alive connection each send POST requests until a request count or a
deadline is reached; every answer's status, every connection error and every latency is counted.
Python threads on the same cores as the server: compare servers or phases measured in one run.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # connection-level failures by exception type
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def rate(self) -> float:
        return self.requests / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_load(port: int, path: str, body_for: Callable[[int], bytes], clients: int, requests: int | None = None,
             seconds: float | None = None, timeout: float = 60, headers: dict[str, str] | None = None) -> LoadResult:
    """``clients`` threads POST ``body_for(n)`` for request number n, until ``requests`` or ``seconds``;
    ``headers`` are sent with each request besides the JSON content type (e.g. an access token)."""
    result = LoadResult()
    sent = {"Content-Type": "application/json", **(headers or {})}
    lock = threading.Lock()
    counter = iter(range(10**12))
    deadline = time.perf_counter() + seconds if seconds else None

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        latencies: list[float] = []
        statuses: Counter = Counter()
        errors: Counter = Counter()
        while True:
            with lock:
                n = next(counter)
            if (requests is not None and n >= requests) or (deadline and time.perf_counter() > deadline):
                break
            start = time.perf_counter()
            try:
                conn.request("POST", path, body_for(n), sent)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                continue
            latencies.append(time.perf_counter() - start)
            statuses[response.status] += 1
        conn.close()
        with lock:
            result.latencies.extend(latencies)
            result.statuses.update(statuses)
            result.errors.update(errors)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall = time.perf_counter() - start
    return result


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
    return total / 1024
