"""Benchmark: the evaluation figures of README (5-fold CV, coverage at 90% accuracy, cross-domain) and the
wall time of the cross-validation command.

Run by hand (`python experiments/bench_evaluation.py --runs 3`); needs the data mirror
(POLICY_TOPICS_DATA_MIRROR, or ../shared/data/cap beside the checkout). Everything goes to a temp home.
Steps: `train data=uscongress` (test split, registered as version 1), `evaluate data=nytimes` with that
model (cross-domain), then `train data=uscongress evaluation.cv_folds=5` RUNS times (median wall time),
and one CV run per `--compare` override set (e.g. --compare model=logreg --compare features=word).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one ``policy-topics`` command (exits on failure)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "policy_topics.cli", *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"failed: policy-topics {' '.join(args)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def latest_metrics(home: str, experiment: str) -> dict[str, float]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home}/mlruns/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    latest = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    return latest[0].data.metrics


def cv_line(label: str, m: dict[str, float]) -> str:
    return (f"  {label:<34} macro-F1 {m['cv_macro_f1_mean']:.3f} +- {m['cv_macro_f1_std']:.3f} "
            f"(95% CI {m['cv_macro_f1_ci95_low']:.3f}-{m['cv_macro_f1_ci95_high']:.3f}, 95% PI of one fold "
            f"{m['cv_macro_f1_pi95_low']:.3f}-{m['cv_macro_f1_pi95_high']:.3f}), accuracy {m['cv_accuracy_mean']:.3f} "
            f"+- {m['cv_accuracy_std']:.3f}; 90% accuracy: threshold "
            f"{m.get('oof_threshold_at_target', float('nan')):.2f}, coverage {m['oof_coverage_at_target']:.1%}; "
            f"ECE {m['oof_ece']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", action="append", default=[], metavar="OVERRIDES",
                        help="space-separated overrides for one more CV run (repeatable)")
    args = parser.parse_args()
    mirror = os.environ.get("POLICY_TOPICS_DATA_MIRROR") or str(REPO.parent / "shared" / "data" / "cap")
    with tempfile.TemporaryDirectory(prefix="policy-topics-bench-eval-") as home:
        env = {**os.environ, "POLICY_TOPICS_HOME": home, "POLICY_TOPICS_DATA_MIRROR": mirror}
        env.pop("MLFLOW_TRACKING_URI", None)
        run(["train", "data=uscongress"], env)
        split = latest_metrics(home, "uscongress")
        cross_seconds = run(["evaluate", "data=nytimes", "model_ref=models:/policy-topics-uscongress/1"], env)
        cross = latest_metrics(home, "nytimes")
        cv_command = ["train", "data=uscongress", "evaluation.cv_folds=5"]
        walls = [run(cv_command, env) for _ in range(args.runs)]
        default = latest_metrics(home, "uscongress")
        compared = []
        for overrides in args.compare:
            run([*cv_command, *overrides.split(), "tracking.log_model=false"], env)
            compared.append((overrides, latest_metrics(home, "uscongress")))

    print(f"policy-topics evaluation figures ({os.cpu_count()} cores)")
    print(f"  test split (train data=uscongress): macro-F1 {split['test_macro_f1']:.3f}; 90% accuracy: threshold "
          f"{split.get('test_threshold_at_target', float('nan')):.2f}, coverage {split['test_coverage_at_target']:.1%};"
          f" ECE {split['test_ece']:.3f}, Brier {split['test_brier']:.3f}")
    print(f"  cross-domain uscongress -> nytimes ({cross_seconds:.1f} s): shared topics macro-F1 "
          f"{cross['shared_macro_f1']:.3f}, accuracy {cross['shared_accuracy']:.3f} "
          f"({int(cross['shared_n_docs']):,} docs); all rows macro-F1 {cross['all_macro_f1']:.3f}, accuracy "
          f"{cross['all_accuracy']:.3f}; unseen topics "
          f"{int(cross['unseen_n_docs']):,} docs ({cross['unseen_share']:.1%}); 90% accuracy coverage (shared) "
          f"{cross['shared_coverage_at_target']:.1%}")
    print(cv_line("5-fold CV, default config", default))
    for overrides, metrics in compared:
        print(cv_line(f"5-fold CV, {overrides}", metrics))
    print(f"  wall time of `policy-topics {' '.join(cv_command)}`: median {statistics.median(walls):.1f} s "
          f"(min {min(walls):.1f}, max {max(walls):.1f}, {len(walls)} runs)")


if __name__ == "__main__":
    main()
