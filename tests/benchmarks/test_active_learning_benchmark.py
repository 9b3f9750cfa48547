"""The active learning benchmark (experiments/active_learning_benchmark.py) on a tiny slice of the demo corpus:
both strategies' curves from the same start, the codes each needs, and its result files and plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments"))

import active_learning_benchmark as bench  # noqa: E402


def test_the_schedule_adds_a_step_per_round_and_ends_at_the_last_round_or_the_pool():
    assert bench.schedule(100, 100, "450", 10_000) == [100, 200, 300, 400, 450]
    assert bench.schedule(100, 100, "2000", 250) == [100, 200, 250]
    assert bench.schedule(100, 100, "all", 300) == [100, 200, 300]
    with pytest.raises(bench.BenchError, match="--start 500 is more than the 300 codes"):
        bench.schedule(500, 100, "all", 300)


def test_codes_needed_is_the_first_round_reaching_the_level_or_none():
    assert bench.codes_needed([100, 200, 300], [0.5, 0.7, 0.8], 0.7) == 200
    assert bench.codes_needed([100, 200, 300], [0.5, 0.6, 0.65], 0.7) is None


def test_a_tiny_run_on_the_demo_corpus_writes_its_table_json_and_plot(tmp_path):
    out, plot = tmp_path / "out", tmp_path / "img" / "curves.png"
    code = bench.main(["--datasets", "demo", "--seeds", "1", "--start", "60", "--step", "30", "--max-labels", "120",
                       "--out", str(out), "--plot", str(plot)])
    assert code == 0
    results = json.loads((out / "active_learning.json").read_text())
    entry = results["datasets"]["demo"]
    assert entry["sizes"] == [60, 90, 120]
    for strategy in ("random", "active"):
        (curve,) = entry["curves"][strategy]
        assert len(curve) == 3 and all(0 <= v <= 1 for v in curve)
    assert entry["curves"]["random"][0][0] == entry["curves"]["active"][0][0]  # the same random start
    assert 0 < entry["full_macro_f1"] <= 1 and entry["pool_docs"] > entry["sizes"][-1]
    assert "| demo |" in (out / "active_learning.md").read_text()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
