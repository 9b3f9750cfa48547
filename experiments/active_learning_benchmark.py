"""Benchmark: how many coded documents active learning saves against coding a random sample.

    make bench-loop                                   # = python experiments/active_learning_benchmark.py
    python experiments/active_learning_benchmark.py --datasets nytimes --seeds 2 --out /tmp/loop

A simulation on coded datasets (read through the data-mirror setting like ``policy-topics train``): the training
pool is the dataset's train + validation rows (subsampled to ``--pool-limit``), its codes hidden. Each seed starts
from ``--start`` random codes and adds ``--step`` per round up to ``--max-labels`` (``all``: the whole pool), by
two strategies from the same start: ``random`` (a random sample of the rest) and ``active`` (``suggest``'s choice,
:func:`policy_topics.models.active.pick`: the smallest margins between the model's two best topics, identical texts
collapsed, spread over TF-IDF clusters). After each round the model is fit on the codes so far and scored on the
dataset's test split (macro-F1). The reference is the same model fit on the whole pool; the table gives the codes
each strategy needs (mean curve over the seeds) to reach 95% of its macro-F1.

The model is the project's default (features ``word_char``, ``model=linearsvc``) with two savings for the
thousands of fits: the vectorizers are fit once on all pool texts (unsupervised: no code is used) and the SVM is
not calibrated; active learning ranks its decision scores (the margin is the same ranking idea as on
probabilities). Writes ``active_learning.json`` and ``active_learning.md`` in ``--out`` (default
``outputs/active_learning``, gitignored; aggregate figures only) and the plot ``--plot``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))

from cap_laws_benchmark import compose  # noqa: E402

MIRROR_ENV = "POLICY_TOPICS_DATA_MIRROR"
DATASETS = ("uscongress", "nytimes", "cap_laws_uk")
STRATEGIES = ("random", "active")
TARGET = 0.95


class BenchError(RuntimeError):
    """A one-line problem the user can fix (no data mirror, a bad schedule)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated data configs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--start", type=int, default=100, help="random codes to start from")
    parser.add_argument("--step", type=int, default=100, help="codes added per round")
    parser.add_argument("--max-labels", default="2000", help="codes at the last round, or 'all' (the whole pool)")
    parser.add_argument("--candidates", type=int, default=None, help="the active strategy clusters the n * this "
                        "many most uncertain documents into n (default: suggest's own; 1 = the n most uncertain)")
    parser.add_argument("--pool-limit", type=int, default=20_000, help="subsample larger pools to this many rows")
    parser.add_argument("--mirror", type=Path, default=None, help=f"data mirror root (default: ${MIRROR_ENV})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a Hydra override")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "active_learning")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "active-learning.png")
    return parser.parse_args(argv)


def load(name: str, home: Path, mirror: Path, overrides: list[str], pool_limit: int,
         ) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, int]:
    """The composed config, the training pool (train + validation, subsampled), the test split, the pool's
    size before subsampling."""
    from policy_topics import taxonomy
    from policy_topics.data.prep import prepare_dataset
    from policy_topics.jobs.analysis import final_training_rows

    cfg = compose(home, mirror, f"data={name}", *overrides)
    with taxonomy.named(cfg["data"].get("extra_topics")):
        prepared = prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"])
    pool = final_training_rows(cfg, prepared.splits)
    whole = len(pool)
    if whole > pool_limit:
        pool = pool.sample(n=pool_limit, random_state=0)
    return cfg, pool.reset_index(drop=True), prepared.splits["test"].reset_index(drop=True), whole


def schedule(start: int, step: int, max_labels: str, pool_size: int) -> list[int]:
    if start < 2 or step < 1:
        raise BenchError("--start must be at least 2 and --step at least 1")
    last = pool_size if max_labels == "all" else min(int(max_labels), pool_size)
    if start > last:
        raise BenchError(f"--start {start} is more than the {last:,} codes of the last round")
    sizes = list(range(start, last + 1, step))
    return sizes if sizes[-1] == last else [*sizes, last]


class Simulation:
    """One dataset's features (fit once on the pool texts) and its fits."""

    def __init__(self, cfg: dict[str, Any], pool: pd.DataFrame, test: pd.DataFrame,
                 candidates: int | None = None) -> None:
        from policy_topics.features.build import build_features
        from policy_topics.models.active import CANDIDATES_PER_PICK

        self.cfg, self.pool, self.test = cfg, pool, test
        self.candidates = candidates or CANDIDATES_PER_PICK
        features = build_features(cfg["features"])
        self.x_pool = features.fit_transform(pool["text"].tolist())
        self.x_test = features.transform(test["text"].tolist())
        self.y_pool, self.y_test = pool["label"].to_numpy(), test["label"].to_numpy()
        self.texts = pool["text"].tolist()

    def fit(self, rows: np.ndarray) -> Any:
        from threadpoolctl import threadpool_limits

        from policy_topics.models.pipeline import build_estimator

        with threadpool_limits(limits=1):
            return build_estimator(self.cfg["model"]).fit(self.x_pool[rows], self.y_pool[rows])

    def macro_f1(self, model: Any) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(self.y_test, model.predict(self.x_test), average="macro",
                              labels=np.unique(self.y_test), zero_division=0))

    def next_rows(self, strategy: str, model: Any, coded: np.ndarray, n: int, rng: np.random.Generator,
                  seed: int) -> np.ndarray:
        from policy_topics.models.active import margins, pick

        rest = np.setdiff1d(np.arange(len(self.pool)), coded)
        n = min(n, len(rest))
        if strategy == "random":
            return rng.choice(rest, size=n, replace=False)
        scores = model.decision_function(self.x_pool[rest])
        if scores.ndim == 1:  # two topics coded so far
            scores = np.column_stack([-scores, scores])
        return rest[pick([self.texts[i] for i in rest], -margins(scores), n, seed, self.candidates)]

    def curve(self, strategy: str, sizes: list[int], seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        coded = rng.choice(len(self.pool), size=sizes[0], replace=False)
        scores = []
        for i, size in enumerate(sizes):
            model = self.fit(coded)
            scores.append(self.macro_f1(model))
            if i + 1 < len(sizes):
                coded = np.concatenate([coded, self.next_rows(strategy, model, coded, sizes[i + 1] - size, rng,
                                                              seed)])
        return scores


def codes_needed(sizes: list[int], curve: list[float], level: float) -> int | None:
    """The first round's codes at which ``curve`` reaches ``level``; None when it never does."""
    return next((size for size, value in zip(sizes, curve, strict=True) if value >= level), None)


def run_dataset(name: str, args: argparse.Namespace, home: Path, mirror: Path) -> dict[str, Any]:
    cfg, pool, test, whole = load(name, home, mirror, args.set, args.pool_limit)
    started = time.perf_counter()
    sim = Simulation(cfg, pool, test, args.candidates)
    full = sim.macro_f1(sim.fit(np.arange(len(pool))))
    sizes = schedule(args.start, args.step, args.max_labels, len(pool))
    curves: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        for strategy in STRATEGIES:
            curves[strategy].append(sim.curve(strategy, sizes, seed))
        print(f"  {name} seed {seed}: random {curves['random'][-1][-1]:.3f}, active {curves['active'][-1][-1]:.3f} "
              f"at {sizes[-1]:,} codes (full pool {full:.3f}; {time.perf_counter() - started:.0f} s)", flush=True)
    mean = {s: np.mean(curves[s], axis=0).tolist() for s in STRATEGIES}
    needed = {s: codes_needed(sizes, mean[s], TARGET * full) for s in STRATEGIES}
    saved = None
    if needed["random"] and needed["active"]:
        saved = 1 - needed["active"] / needed["random"]
    return {"pool_docs": len(pool), "pool_docs_before_subsampling": whole, "test_docs": len(test),
            "full_macro_f1": full, "sizes": sizes, "curves": curves, "mean": mean, "codes_needed": needed,
            "fewer_codes": saved, "candidates_per_pick": sim.candidates, "seconds": time.perf_counter() - started}


def _needed(value: int | None, sizes: list[int]) -> str:
    return f"{value:,}" if value else f"not within {sizes[-1]:,}"


def markdown(results: dict[str, Any]) -> str:
    lines = ["| dataset | pool (test) docs | full-pool macro-F1 | 95% of it | codes needed, random | "
             "codes needed, active | fewer codes | macro-F1 at the last round, random / active |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, entry in results["datasets"].items():
        sizes, needed, full = entry["sizes"], entry["codes_needed"], entry["full_macro_f1"]
        saved = "" if entry["fewer_codes"] is None else f"{entry['fewer_codes']:.0%}"
        pool = f"{entry['pool_docs']:,}"
        if entry["pool_docs_before_subsampling"] > entry["pool_docs"]:
            pool += f" of {entry['pool_docs_before_subsampling']:,}"
        lines.append(f"| {name} | {pool} ({entry['test_docs']:,}) | {full:.3f} | {TARGET * full:.3f} | "
                     f"{_needed(needed['random'], sizes)} | {_needed(needed['active'], sizes)} | {saved} | "
                     f"{entry['mean']['random'][-1]:.3f} / {entry['mean']['active'][-1]:.3f} at {sizes[-1]:,} |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = results["datasets"]
    fig, axes = plt.subplots(1, len(entries), figsize=(4.2 * len(entries), 3.6), squeeze=False)
    for ax, (name, entry) in zip(axes[0], entries.items(), strict=True):
        for strategy, colour in zip(STRATEGIES, ("tab:grey", "tab:blue"), strict=True):
            values = np.asarray(entry["curves"][strategy])
            mean, spread = values.mean(axis=0), values.std(axis=0)
            ax.plot(entry["sizes"], mean, color=colour, label=strategy)
            ax.fill_between(entry["sizes"], mean - spread, mean + spread, color=colour, alpha=0.2)
        ax.axhline(TARGET * entry["full_macro_f1"], color="black", linestyle="--", linewidth=0.8,
                   label="95% of the full pool")
        ax.set_title(name)
        ax.set_xlabel("coded documents")
        ax.set_ylabel("test macro-F1")
    axes[0][0].legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(partial, dpi=110)
    plt.close(fig)
    partial.replace(path)


def write(results: dict[str, Any], out: Path, plot_path: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("active_learning.json", json.dumps(results, indent=2) + "\n"),
                       ("active_learning.md", markdown(results))):
        partial = out / f".{name}.tmp"
        partial.write_text(text, encoding="utf-8")
        partial.replace(out / name)
    plot(results, plot_path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = os.environ.get(MIRROR_ENV)
    mirror = args.mirror or (Path(env) if env else REPO.parent / "shared" / "data")
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    results: dict[str, Any] = {"date": datetime.now(UTC).date().isoformat(), "seeds": args.seeds,
                               "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                               "overrides": args.set, "datasets": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="loop-bench-") as home:  # prepared splits: outside the repository
            for name in names:
                results["datasets"][name] = run_dataset(name, args, Path(home), mirror)
                write(results, args.out, args.plot)  # after each dataset: a long run keeps what it measured
    except BenchError as exc:
        print(f"active_learning_benchmark: {exc}", file=sys.stderr)
        return 2
    print(markdown(results))
    print(f"wrote {args.out / 'active_learning.json'}, {args.out / 'active_learning.md'} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
