"""Benchmark: wall time and peak memory of `policy-topics train data=uscongress`, and of fit+evaluate alone.

Run by hand (`make bench`, or `python experiments/bench_train.py --runs 5`); it prints medians of
several runs. Needs the data mirror (POLICY_TOPICS_DATA_MIRROR, or ../shared/data/cap beside the checkout).
Everything goes to a temp home, so the project's own store is untouched. The first whole-command run
creates the MLflow store and the processed-split cache and is reported separately as "cold".
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


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.communicate()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{err.decode()[-2000:]}")
    proc.stdout_text = out.decode()  # type: ignore[attr-defined]
    return wall, usage.ru_maxrss / 1024


def fit_evaluate_once(overrides: list[str]) -> None:
    """In-process: prepare data (cached), then time fit + evaluate only; prints seconds. As in the train
    command, the fit worker processes start before data preparation; here the timer also waits for them
    to be ready, so it counts the fits, not process start-up (the whole-command figure counts that)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from policy_topics.data.prep import prepare_dataset
    from policy_topics.jobs.fitting import warm_up
    from policy_topics.jobs.train import Stages, fit_and_evaluate
    from policy_topics.paths import config_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)
    workers = warm_up(cfg)
    prepared = prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"])
    for ready in workers:
        ready.result()
    start = time.perf_counter()
    _, evaluations = fit_and_evaluate(cfg, prepared.splits, Stages(lambda _: None))
    elapsed = time.perf_counter() - start
    print(f"{elapsed:.4f} {evaluations[-1].metrics['macro_f1']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fit-only", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", default=["data=uscongress"])
    args = parser.parse_args()
    if args.fit_only is not None:
        fit_evaluate_once(args.fit_only)
        return
    mirror = os.environ.get("POLICY_TOPICS_DATA_MIRROR") or str(REPO.parent / "shared" / "data" / "cap")
    with tempfile.TemporaryDirectory(prefix="policy-topics-bench-") as home:
        env = {**os.environ, "POLICY_TOPICS_HOME": home, "POLICY_TOPICS_DATA_MIRROR": mirror}
        env.pop("MLFLOW_TRACKING_URI", None)
        train = [sys.executable, "-m", "policy_topics.cli", "train", *args.overrides]
        cold = timed(train, env)
        warm = [timed(train, env) for _ in range(args.runs)]
        fit_cmd = [sys.executable, __file__, "--fit-only", *args.overrides]
        fits = []
        for _ in range(args.runs):
            proc = subprocess.run(fit_cmd, env=env, capture_output=True, text=True, check=True)
            seconds, f1 = proc.stdout.split()
            fits.append((float(seconds), float(f1)))
        fit_rss = [timed(fit_cmd, env)[1] for _ in range(2)]

    print(f"policy-topics train {' '.join(args.overrides)}  ({args.runs} runs, {os.cpu_count()} cores)")
    print(f"  whole command, cold (new store)  {cold[0]:6.2f} s   peak RSS {cold[1]:6.0f} MiB")
    print(f"  whole command, warm (median)     {statistics.median(w for w, _ in warm):6.2f} s   "
          f"peak RSS {statistics.median(m for _, m in warm):6.0f} MiB   (min {min(w for w, _ in warm):.2f} s, "
          f"max {max(w for w, _ in warm):.2f} s)")
    print(f"  fit + evaluate alone (median)    {statistics.median(s for s, _ in fits):6.2f} s   "
          f"peak RSS {statistics.median(fit_rss):6.0f} MiB (whole process)   test macro-F1 {fits[0][1]:.3f}")


if __name__ == "__main__":
    main()
