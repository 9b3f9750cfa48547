"""Benchmark: how long MLflow servers take to answer, and how long training takes to fail on a bad one.

Run by hand: `python experiments/bench_tracking_server.py --runs 3`. Prints medians of:
* the UI command that `policy-topics train` prints (README's), on a SQLite store, until /health answers;
* `policy-topics tracking-server` on a new PostgreSQL cluster (initdb, tables) and on an existing one;
* `policy-topics train` against a port where nothing listens, a server answering 503, and a hung server,
  until it exits with its one-line error.
Everything runs on loopback in temp folders. PostgreSQL needs Debian's package (`make system-deps`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from policy_topics.tracking.server import stop_process, wait_until_healthy

CLI = [sys.executable, "-m", "policy_topics.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "POLICY_TOPICS_HOME": str(home), **extra}


def seconds_to_health(argv: list[str], env: dict[str, str], port: int) -> float:
    """Start a server process, time it until /health answers, stop it (and its process group)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc, 300)
        return time.perf_counter() - start
    finally:
        if "tracking-server" in argv:
            proc.send_signal(signal.SIGINT)  # the command stops its PostgreSQL too
            proc.wait(timeout=120)
        stop_process(proc)


def ui_start(home: Path, **env: str) -> float:
    """README's UI command (as `policy-topics train` prints it) on the store of one demo run."""
    result = subprocess.run([*CLI, "train", "tracking.log_model=false"], env=env_for(home), capture_output=True,
                            text=True, check=True)
    command = result.stdout.rsplit("MLflow UI", 1)[1].splitlines()[0].strip()
    port = free_port()
    return seconds_to_health(shlex.split(command.replace("--port 5000", f"--port {port}")), env_for(home, **env),
                             port)


def team_server_start(folder: Path) -> float:
    port = free_port()
    argv = [*CLI, "tracking-server", "--dir", str(folder), "--port", str(port), "--postgres-port",
            str(free_port()), "--workers", "1"]
    return seconds_to_health(argv, env_for(folder), port)


class Unavailable(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def fail_time(uri: str) -> float:
    with tempfile.TemporaryDirectory(prefix="policy-topics-bench-") as home:
        start = time.perf_counter()
        proc = subprocess.run([*CLI, "train"], env=env_for(Path(home), MLFLOW_TRACKING_URI=uri),
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 3:
            sys.exit(f"expected exit code 3 against {uri}, got {proc.returncode}: {proc.stderr[-500:]}")
    return elapsed


def median_of(runs: int, measure: Callable[[], float]) -> str:
    values = [measure() for _ in range(runs)]
    return f"{statistics.median(values):6.1f} s  (runs: {', '.join(f'{v:.1f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"MLflow servers and fail-fast ({args.runs} runs each, {os.cpu_count()} cores)")

    with tempfile.TemporaryDirectory(prefix="policy-topics-bench-") as home:
        figure = median_of(args.runs, lambda: ui_start(Path(home)))
        print(f"  UI command on the SQLite store, to /health          {figure}")
        figure = median_of(args.runs, lambda: ui_start(Path(home), MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"))
        print(f"  the same, job runner off                            {figure}")

    def new_cluster() -> float:
        folder = Path(tempfile.mkdtemp(prefix="policy-topics-bench-pg-"))
        folder.chmod(0o755)  # reachable by user postgres when run as root
        try:
            return team_server_start(folder)
        finally:
            shutil.rmtree(folder)

    print(f"  tracking-server, new PostgreSQL cluster, to /health  {median_of(args.runs, new_cluster)}")
    folder = Path(tempfile.mkdtemp(prefix="policy-topics-bench-pg-"))
    folder.chmod(0o755)
    try:
        team_server_start(folder)
        print(f"  tracking-server, existing cluster, to /health        "
              f"{median_of(args.runs, lambda: team_server_start(folder))}")
    finally:
        shutil.rmtree(folder)

    print(f"  train, nothing listening, to its error               "
          f"{median_of(args.runs, lambda: fail_time(f'http://127.0.0.1:{free_port()}'))}")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        print(f"  train, server answering 503, to its error            {median_of(args.runs, lambda: fail_time(uri))}")
    finally:
        server.shutdown()
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        uri = f"http://127.0.0.1:{hung.getsockname()[1]}"
        print(f"  train, hung server, to its error                     {median_of(args.runs, lambda: fail_time(uri))}")


if __name__ == "__main__":
    main()
