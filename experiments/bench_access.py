"""Benchmark: what access tokens and the access log add to a request of the model server, measured inside
the server (the ASGI app called directly, no HTTP or client in the way), so the difference is not lost in
the noise of a loopback load test.

Run by hand (`python experiments/bench_access.py`). It trains the demo model into a temp home (or
`--data uscongress` through the data mirror), then answers ``--requests`` single-text /predict requests
with the plain app and with the app checking a token (three valid ones, from a file and the environment)
and writing the access log to a file, in alternating rounds (ABBA) so that load on the machine hits both alike.
It prints the median time per request of each and the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "policy_topics.cli"]
TEXT = "A bill to extend emergency loans to dairy farmers after the spring floods"


async def answer(app, scope: dict, body: bytes) -> int:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"]


def rounds(apps: dict, requests: int, per_round: int) -> dict[str, list[float]]:
    """Microseconds per request of each app, one figure per round of ``per_round`` requests."""
    body = json.dumps({"texts": [TEXT]}).encode()
    headers = [(b"content-type", b"application/json"), (b"authorization", b"Bearer token-two-" + b"x" * 24)]
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers, "query_string": b"",
             "client": ("127.0.0.1", 50000)}
    figures: dict[str, list[float]] = {name: [] for name in apps}
    loop = asyncio.new_event_loop()
    for number in range(requests // per_round):
        order = list(apps.items())
        for name, app in order if number % 2 else order[::-1]:  # ABBA: neither goes first every time
            start = time.perf_counter()
            for _ in range(per_round):
                assert loop.run_until_complete(answer(app, scope, body)) == 200
            figures[name].append((time.perf_counter() - start) / per_round * 1e6)
    loop.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="demo")
    parser.add_argument("--requests", type=int, default=40_000, help="requests per app")
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-access-") as tmp:
        os.environ["POLICY_TOPICS_HOME"] = tmp
        os.environ.setdefault("POLICY_TOPICS_DATA_MIRROR", str(REPO.parent / "shared/data/cap"))
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        subprocess.run([*CLI, "train", f"data={args.data}", "tracking.register_as=bench-access"], check=True,
                       capture_output=True)
        from policy_topics.serving.auth import AccessLog, Tokens
        from policy_topics.serving.http import Access, PredictionApp
        from policy_topics.serving.protocol import Limits
        from policy_topics.tracking.registry import load, resolve

        loaded = load(resolve("models:/bench-access/1"))
        (Path(tmp) / "tokens").write_text("token-one-" + "x" * 24 + "\ntoken-two-" + "x" * 24 + "\n")
        secured = Access(Tokens(Path(tmp) / "tokens", "token-three-" + "x" * 24), AccessLog(str(Path(tmp) / "log")))
        apps = {"plain": PredictionApp(loaded.predictor, loaded.metadata, Limits()),
                "token + access log": PredictionApp(loaded.predictor, loaded.metadata, Limits(), secured)}
        rounds(apps, 2_000, 500)  # warm-up
        figures = rounds(apps, args.requests, args.per_round)
        secured.log.flush()
        lines = len((Path(tmp) / "log").read_bytes().splitlines())
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"model: {args.data}; {args.requests:,} single-text /predict requests per app, in rounds of "
          f"{args.per_round}; {os.cpu_count()} CPUs")
    for name, value in medians.items():
        print(f"  {name:<20} {value:7.1f} us per request (median of {len(figures[name])} rounds)")
    print(f"  difference           {medians['token + access log'] - medians['plain']:+7.1f} us per request "
          f"({lines:,} access log lines written)")


if __name__ == "__main__":
    main()
