"""What the agreement statistics cost a run: Cohen's kappa and Krippendorff's alpha with their bootstrap
intervals (policy_topics.evaluation.agreement) on synthetic codes of several sizes, median of a few runs.

The codes are drawn here (21 topics with skewed shares, a "model" that agrees on a given share of the
documents and picks any topic otherwise), so no dataset is needed:

    python experiments/bench_agreement.py [--sizes 185 900 5000 20000] [--accuracy 0.75] [--resamples 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from policy_topics.evaluation.agreement import agreements


def codes(n: int, accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(21, 0.8))
    human = rng.choice(np.arange(1, 22), n, p=shares)
    model = np.where(rng.random(n) < accuracy, human, rng.choice(np.arange(1, 22), n))
    return human, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[185, 900, 5000, 20000])
    parser.add_argument("--accuracy", type=float, default=0.75)
    parser.add_argument("--resamples", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    agreements(*codes(50, args.accuracy, 0), resamples=5)  # imports and first calls out of the timing
    print(f"| documents | kappa + interval (s) | alpha + interval (s) | kappa | alpha |  ({args.resamples} resamples, "
          f"accuracy {args.accuracy}, median of {args.runs} runs)")
    print("|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        human, model = codes(n, args.accuracy, seed=n)
        seconds: dict[str, list[float]] = {"kappa": [], "alpha": []}
        results = {}
        for _ in range(args.runs):
            for statistic in seconds:
                start = time.perf_counter()
                results[statistic] = agreements(human, model, args.resamples, 0, (statistic,))[statistic]
                seconds[statistic].append(time.perf_counter() - start)
        print(f"| {n:,} | {statistics.median(seconds['kappa']):.3f} | {statistics.median(seconds['alpha']):.2f} | "
              f"{results['kappa'].describe()} | {results['alpha'].describe()} |")


if __name__ == "__main__":
    main()
