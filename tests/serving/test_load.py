"""A short version of the load benchmark (experiments/bench_load.py) against the real server."""

from __future__ import annotations

import sys

import pytest
from conftest import REPO, running_server

sys.path.insert(0, str(REPO / "experiments"))
from bench_load import load_test

pytestmark = pytest.mark.e2e


def test_the_server_under_concurrent_load_answers_everything_without_5xx_or_growing(demo_store):
    with running_server(demo_store.home, "--model", demo_store.registered) as live:
        report = load_test(live.port, live.pid, clients=16, seconds=8, warmup=3)
    assert report.main.requests > 100
    assert report.main.server_errors == 0 and not report.main.errors
    assert set(report.main.statuses) == {200, 400, 422}  # bad requests in the mix get 4xx
    assert report.growth <= 0.10, report.render(16)
