"""Benchmark: the project's model server against `mlflow models serve`, and the batch predict command.

Run by hand (`make bench-serve`, or `python experiments/bench_serve.py`). It trains one model into a temp
home (uscongress through the data mirror, or `--data demo`), registers and promotes it, then starts both
servers on loopback with one worker each, serving the same registered version, and measures them in one run:

- single text at concurrency 1: p50 and p99 latency over ``--requests`` requests;
- single texts at concurrency 8 for ``--seconds``: requests per second and p99;
- 100-text batches at concurrency 1: median seconds per batch;
- server memory (RSS of the process tree) after the load.

The project's server is measured twice: as it starts by default, and with an access token (every request
sends it) and the access log written to a file, to show what checking and logging cost.

Then the batch command on text files of growing size: documents per second and peak memory, which should
stay flat as the input grows (the command streams). The load generator is Python threads with keep-alive
connections on the same 2 cores, so absolute figures include its cost; compare the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loadgen import LoadResult, rss_mib, run_load

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "policy_topics.cli"]
MODEL = "models:/bench-serve@champion"


def sentences() -> list[str]:
    """Sentences of the example documents in seeds/ (written for the project): varied policy text."""
    out = []
    for path in sorted((REPO / "seeds").glob("*.txt")):
        out += [s.strip() + "." for s in path.read_text().replace("\n", " ").split(". ") if len(s.split()) > 5]
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return proc.stdout


class Server:
    """A server subprocess with the request body it expects for a list of texts."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, path: str,
                 body: Callable[[list[str]], bytes], health: str, headers: dict[str, str] | None = None) -> None:
        self.name, self.port, self.path, self.body, self.headers = name, port, path, body, headers
        start = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"{name} exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", health)
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
            if time.perf_counter() - start > 180:
                self.stop()
                sys.exit(f"{name} did not start within 180 s")
        self.startup = time.perf_counter() - start

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=60)


def load(server: Server, texts: list[str], batch: int, clients: int, requests: int | None,
         seconds: float | None) -> LoadResult:
    """Requests of ``batch`` texts each; any answer but 200 aborts the benchmark."""
    def body(n: int) -> bytes:
        return server.body([texts[(n * batch + i) % len(texts)] for i in range(batch)])

    result = run_load(server.port, server.path, body, clients, requests, seconds, headers=server.headers)
    if set(result.statuses) != {200} or result.errors:
        sys.exit(f"{server.name}: answers {dict(result.statuses)}, connection errors {dict(result.errors)}")
    return result


def bench_servers(env: dict[str, str], texts: list[str], args: argparse.Namespace, home: Path) -> None:
    ours_port, secured_port, mlflow_port = free_port(), free_port(), free_port()
    token = "bench-" + os.urandom(16).hex()
    servers = [
        Server("policy-topics serve", [*CLI, "serve", "--model", MODEL, "--port", str(ours_port)], env, ours_port,
               "/predict", lambda t: json.dumps({"texts": t}).encode(), "/health"),
        Server("  + token, access log", [*CLI, "serve", "--model", MODEL, "--port", str(secured_port),
                                         "--access-log", str(home / "access.log")],
               {**env, "POLICY_TOPICS_SERVE_TOKENS": token}, secured_port, "/predict",
               lambda t: json.dumps({"texts": t}).encode(), "/health", {"Authorization": f"Bearer {token}"}),
        Server("mlflow models serve", [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", MODEL,
                                       "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mlflow_port)],
               env, mlflow_port, "/invocations",
               lambda t: json.dumps({"dataframe_split": {"columns": ["text"], "data": [[x] for x in t]}}).encode(),
               "/health"),
    ]
    rows = []
    try:
        for server in servers:
            load(server, texts, 1, 1, 50, None)  # warm-up
            single = load(server, texts, 1, 1, args.requests, None)
            concurrent = load(server, texts, 1, 8, None, args.seconds)
            batches = load(server, texts, 100, 1, args.batches, None)
            rows.append((server.name, server.startup, single.pct(0.5) * 1e3, single.pct(0.99) * 1e3,
                         concurrent.rate(), concurrent.pct(0.99) * 1e3, batches.pct(0.5) * 1e3,
                         rss_mib(server.proc.pid)))
    finally:
        for server in servers:
            server.stop()
    print("\nserver (1 worker)      start s  p50 ms  p99 ms  req/s@8  p99@8 ms  100-text ms  RSS MiB")
    for name, *figures in rows:
        print(f"{name:<22} {figures[0]:7.1f} {figures[1]:7.2f} {figures[2]:7.2f} {figures[3]:8.0f} {figures[4]:9.1f}"
              f" {figures[5]:12.1f} {figures[6]:8.0f}")
    ours, secured, theirs = rows
    for label, row in (("ours", ours), ("ours with token and access log", secured)):
        print(f"ratios ({label} vs mlflow): p50 latency {theirs[2] / row[2]:.1f}x lower, throughput at 8 clients "
              f"{row[4] / theirs[4]:.1f}x, 100-text batch {theirs[6] / row[6]:.1f}x faster")
    print(f"token check and access log: p50 {1e3 * (secured[2] - ours[2]):+.0f} us, throughput at 8 clients "
          f"{secured[4] / ours[4] - 1:+.1%}")


def bench_batch_command(env: dict[str, str], texts: list[str], sizes: list[int], workdir: Path) -> None:
    print("\nbatch command (txt in, JSONL out)  docs     seconds  docs/s  peak RSS MiB")
    for size in sizes:
        source, target = workdir / f"docs-{size}.txt", workdir / f"pred-{size}.jsonl"
        with source.open("w") as handle:
            for n in range(size):
                handle.write(texts[n % len(texts)] + "\n")
        start = time.perf_counter()
        proc = subprocess.Popen([*CLI, "predict", "--input", str(source), "--lines", "--output", str(target),
                                 "--no-progress"], env=env, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"predict failed: {proc.stderr.read().decode()[-2000:]}")
        with target.open("rb") as written:
            if sum(1 for _ in written) != size:
                sys.exit(f"predict wrote {target} without one line per document")
        print(f"{'':<34} {size:<8} {wall:7.1f} {size / wall:7.0f} {usage.ru_maxrss / 1024:13.0f}")
        source.unlink()
        target.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="uscongress", help="dataset config to train the served model on")
    parser.add_argument("--requests", type=int, default=1000, help="single-text requests at concurrency 1")
    parser.add_argument("--seconds", type=float, default=15, help="duration of the 8-client run")
    parser.add_argument("--batches", type=int, default=50, help="100-text requests")
    parser.add_argument("--sizes", default="20000,200000", help="documents in the batch-command inputs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        home = Path(tmp)
        # mlflow models serve runs `uvicorn` from PATH: make it the venv's
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "POLICY_TOPICS_HOME": str(home),
               "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"}
        if "POLICY_TOPICS_DATA_MIRROR" not in env and (REPO.parent / "shared/data/cap").is_dir():
            env["POLICY_TOPICS_DATA_MIRROR"] = str(REPO.parent / "shared/data/cap")
        run([*CLI, "train", f"data={args.data}", "tracking.register_as=bench-serve"], env)
        run([*CLI, "promote", "bench-serve", "1"], env)
        texts = sentences()
        print(f"model: {args.data}, registered as bench-serve v1; {len(texts)} distinct test sentences; "
              f"{os.cpu_count()} CPUs")
        bench_servers(env, texts, args, home)
        bench_batch_command(env, texts, [int(s) for s in args.sizes.split(",")], home)


if __name__ == "__main__":
    main()
