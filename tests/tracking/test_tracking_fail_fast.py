"""A tracking server that is broken or hung stops `policy-topics train` with one line before any work: no
processed data, no MLflow store, in seconds rather than MLflow's minutes of retries. (A port where nothing
listens is a case of test_train_cli's bad-input tests; a server whose database is down, of test_tracking_server.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import files_under, forked_cli

pytestmark = pytest.mark.e2e


class Unavailable(BaseHTTPRequestHandler):
    """A proxy whose MLflow behind it is gone: 503 on every path (``/health`` too)."""

    def do_GET(self) -> None:
        body = b"<html><body>503 Service Unavailable</body></html>"
        self.send_response(503)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unavailable_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A hung server: it accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def train_against(uri: str, home) -> tuple[float, list[str], int]:
    start = time.perf_counter()
    result = forked_cli(["train"], home, MLFLOW_TRACKING_URI=uri)
    elapsed = time.perf_counter() - start
    print(f"{uri}: exit {result.returncode} after {elapsed:.1f} s: {result.stderr.strip()}")
    return elapsed, result.stderr.strip().splitlines(), result.returncode


def assert_failed_fast_leaving_nothing(home, elapsed: float, lines: list[str], code: int, phrase: str) -> None:
    assert code == 3
    assert len(lines) == 1 and lines[0].startswith("error: tracking server ") and phrase in lines[0], lines
    assert elapsed < 60  # MLflow's own client would retry with back-off for minutes
    assert files_under(home) == []  # no processed splits, no local store, no outputs


def test_a_server_answering_503_fails_at_once(empty_home, unavailable_server):
    elapsed, lines, code = train_against(unavailable_server, empty_home)
    assert_failed_fast_leaving_nothing(empty_home, elapsed, lines, code, "answered 503 Service Unavailable; check the")


def test_a_hung_server_fails_after_the_five_second_timeout(empty_home, silent_server):
    elapsed, lines, code = train_against(silent_server, empty_home)
    assert_failed_fast_leaving_nothing(empty_home, elapsed, lines, code, "is not reachable (timed out)")
    assert elapsed >= 5
