"""Benchmark: the model server under load: 64 concurrent clients for 60 s on loopback.

Run by hand (`make bench-load`, or `python experiments/bench_load.py --clients 64 --seconds 60`). It trains
the demo model into a temp home (or `--data uscongress` through the data mirror), starts `policy-topics
serve`, warms it up, records its memory, then loads it with a mix of requests: ordinary batches of 1-3
texts, empty and whitespace texts, unicode with control characters, 20,000-character texts, and a share
of bad requests (malformed JSON, wrong shapes) that must get 4xx. It prints requests, statuses, 5xx,
connection errors, latency percentiles and memory after warm-up against memory after the load.
CI runs a shorter version of the same check (tests/serving/test_load.py).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from loadgen import LoadResult, rss_mib, run_load

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "policy_topics.cli"]

ORDINARY = [
    "A bill to extend emergency loans to dairy farmers after the spring floods",
    "The city council approved a new contract for transit workers on Tuesday",
    "To amend the Internal Revenue Code to expand the credit for child care",
    "Navy officials defended the cost of a new class of frigates before the committee",
    "Hospitals in three counties will share a federal grant for rural emergency care",
]
ODD = ["", "   \t\n ", "Z\u00fcrich \u202e\u0000\u001b[31m policy \U0001f5f3 \u00e9l\u00e9ction", "tax " * 5000]


def body_for(n: int) -> bytes:
    """Request n of the mix: 90% valid, 5% malformed JSON, 5% wrong shape."""
    kind = n % 20
    if kind == 0:
        return b'{"texts": ["unterminated'
    if kind == 1:
        return json.dumps({"texts": [n, None]}).encode()
    texts = [ORDINARY[(n + i) % len(ORDINARY)] for i in range(1 + n % 3)]
    if kind in (2, 3):
        texts.append(ODD[n % len(ODD)])
    return json.dumps({"texts": texts, "top_k": 1 + n % 3, "explain": n % 2}).encode()


def expected_status(n: int) -> int:
    return {0: 400, 1: 422}.get(n % 20, 200)


@dataclass
class LoadReport:
    warm: LoadResult
    main: LoadResult
    rss_warm: float
    rss_after: float

    @property
    def growth(self) -> float:
        return (self.rss_after - self.rss_warm) / self.rss_warm

    def render(self, clients: int) -> str:
        m = self.main
        return "\n".join([
            f"load: {clients} clients for {m.wall:.1f} s: {m.requests:,} requests ({m.rate():,.0f}/s)",
            f"  statuses {dict(sorted(m.statuses.items()))}; 5xx {m.server_errors}; "
            f"connection errors {dict(m.errors) or 0}",
            f"  latency p50 {m.pct(0.5) * 1e3:.1f} ms, p99 {m.pct(0.99) * 1e3:.1f} ms, "
            f"max {max(m.latencies) * 1e3:.1f} ms",
            f"  memory after warm-up {self.rss_warm:.0f} MiB, after the load {self.rss_after:.0f} MiB "
            f"({self.growth:+.1%})",
        ])


def load_test(port: int, pid: int, clients: int, seconds: float, warmup: float,
              headers: dict[str, str] | None = None) -> LoadReport:
    """Warm up, measure memory, load for ``seconds``, measure memory again."""
    warm = run_load(port, "/predict", body_for, clients, seconds=warmup, headers=headers)
    rss_warm = rss_mib(pid)
    main = run_load(port, "/predict", body_for, clients, seconds=seconds, headers=headers)
    time.sleep(0.5)
    return LoadReport(warm, main, rss_warm, rss_mib(pid))


def wait_for_health(port: int, proc: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"server did not answer within {limit:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--data", default="demo")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--tokens", action="store_true", help="serve with an access token (sent with every "
                        "request) and the access log written to a file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        env = {**os.environ, "POLICY_TOPICS_HOME": tmp}
        env.setdefault("POLICY_TOPICS_DATA_MIRROR", str(REPO.parent / "shared/data/cap"))
        env.pop("MLFLOW_TRACKING_URI", None)
        subprocess.run([*CLI, "train", f"data={args.data}", "tracking.register_as=bench-load"], env=env,
                       check=True, capture_output=True)
        subprocess.run([*CLI, "promote", "bench-load", "1"], env=env, check=True, capture_output=True)
        secured, headers = [], None
        if args.tokens:
            token = "bench-" + os.urandom(16).hex()
            env["POLICY_TOPICS_SERVE_TOKENS"], headers = token, {"Authorization": f"Bearer {token}"}
            secured = ["--access-log", str(Path(tmp) / "access.log")]
        proc = subprocess.Popen([*CLI, "serve", "--port", str(args.port), "--workers", str(args.workers), *secured],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_for_health(args.port, proc)
            report = load_test(args.port, proc.pid, args.clients, args.seconds, args.warmup, headers)
            logged = len((Path(tmp) / "access.log").read_bytes().splitlines()) if args.tokens else None
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        leaked = b"Traceback" in proc.stderr.read()
    print(report.render(args.clients))
    if logged is not None:
        print(f"  with an access token on every request; access log: {logged:,} lines")
    wrong = report.main.server_errors + sum(report.main.errors.values())
    print(f"  verdict: {'ok' if not wrong and report.growth <= 0.10 and not leaked else 'FAILED'} "
          f"(no 5xx, no connection errors, memory growth <= 10%, no traceback in the server log)")


if __name__ == "__main__":
    main()
