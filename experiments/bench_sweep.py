"""Benchmark: an Optuna sweep on uscongress, serial against joblib-parallel, and its best trial against
the default config on validation macro-F1.

Run by hand: `python experiments/bench_sweep.py --runs 3` (needs the data mirror, like bench_train.py).
Both modes propose trials in batches of two (hydra.sweeper.n_jobs=2), so the seeded sampler proposes the
same trials; only the launcher differs: joblib with one job (the trials one after another, in process)
or two (two worker processes). Everything goes to a temp home; the project's own store is untouched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_train import REPO, timed


def latest_sweep(home: str) -> tuple[float, int, list[tuple[str, float]]]:
    """Best validation macro-F1, trial count and (overrides, score) of every trial of the newest sweep."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{Path(home) / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("uscongress")
    parent = client.search_runs([exp.experiment_id], "tags.`policy_topics.role` = 'sweep'",
                                order_by=["attributes.start_time DESC"], max_results=1)[0]
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    trials = sorted((c.data.tags["policy_topics.overrides"], round(c.data.metrics["val_macro_f1"], 6))
                    for c in children)
    return parent.data.metrics["best_val_macro_f1"], len(children), trials


def default_val_f1(home: str) -> float:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{Path(home) / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("uscongress")
    runs = client.search_runs([exp.experiment_id])
    plain = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and "policy_topics.role" not in r.data.tags]
    return plain[0].data.metrics["val_macro_f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="sweeps per mode (the median wall time is reported)")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    mirror = os.environ.get("POLICY_TOPICS_DATA_MIRROR") or str(REPO.parent / "shared" / "data" / "cap")
    with tempfile.TemporaryDirectory(prefix="policy-topics-bench-") as home:
        env = {**os.environ, "POLICY_TOPICS_HOME": home, "POLICY_TOPICS_DATA_MIRROR": mirror}
        env.pop("MLFLOW_TRACKING_URI", None)
        cli = [sys.executable, "-m", "policy_topics.cli", "train"]
        timed([*cli, "data=uscongress", "tracking.log_model=false"], env)  # also creates the store and splits
        baseline = default_val_f1(home)
        sweep = [*cli, "-m", "hparams_search=optuna", "data=uscongress", f"hydra.sweeper.n_trials={args.trials}",
                 "hydra.sweeper.n_jobs=2"]
        results: dict[str, list[tuple[float, float, int, list]]] = {}
        for mode, jobs in (("serial (joblib n_jobs=1)", 1), ("joblib n_jobs=2", 2)):
            for _ in range(args.runs):
                wall, _ = timed([*sweep, f"hydra.launcher.n_jobs={jobs}"], env)
                best, count, trials = latest_sweep(home)
                results.setdefault(mode, []).append((wall, best, count, trials))

    print(f"Optuna sweep, data=uscongress, {args.trials} trials, {args.runs} sweeps per mode, {os.cpu_count()} cores")
    print(f"  default config (word+char TF-IDF, calibrated LinearSVC): validation macro-F1 {baseline:.4f}")
    for mode, rows in results.items():
        walls = [r[0] for r in rows]
        print(f"  {mode:<26} wall {statistics.median(walls):6.1f} s (min {min(walls):.1f}, max {max(walls):.1f})   "
              f"trials {rows[0][2]}   best validation macro-F1 {rows[0][1]:.4f} ({rows[0][1] - baseline:+.4f})")
    all_trials = [r[3] for rows in results.values() for r in rows]
    print(f"  same trials and scores in every sweep: {all(t == all_trials[0] for t in all_trials)}")
    serial, parallel = (statistics.median(r[0] for r in rows) for rows in results.values())
    print(f"  speed-up of joblib over serial: {serial / parallel:.2f}x")


if __name__ == "__main__":
    main()
