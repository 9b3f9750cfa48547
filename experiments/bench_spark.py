"""Benchmark: batch prediction on Spark (``policy-topics predict --engine spark``) against the batch command on
the same synthetic documents, and where Spark's time goes.

    python experiments/bench_spark.py --docs 1000000 --runs 3          (make bench-spark)

Documents: as ``bench_scale.py`` makes them (demo-corpus texts with their tokens shuffled, Parquet, 100,000
rows per row group), in a temp folder removed at the end. The model: one trained on the demo corpus in a
temp project home (``policy-topics train``), or ``--home`` and ``--model`` of an existing store.

Each end-to-end run is its own ``policy-topics predict`` process writing Parquet; the table gives its wall
time (imports, model load, reading, coding, writing: docs/s = N / wall), the peak memory of its process tree
(the JVM and every Python worker included) and, for Spark, the largest resident memory of one Python worker
(what each executor core needs for the model and its Arrow batches).

The breakdown (one process, same master): starting the session (JVM), setting up the UDF (the driver fetches
the model), a job with an identity UDF of the same shape (read, Arrow both ways, write: Spark's own cost), the
job with the model, and, outside Spark, loading the model once and coding the same texts in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import generate, run_polled  # the same synthetic documents, the same measuring


def measured(cmd: list[str], env: dict[str, str]) -> dict:
    """Wall time, peak memory of the process tree and of the largest Spark Python worker of one command."""
    out, wall, peak, worker = run_polled(cmd, env, marks=("pyspark.daemon", "pyspark.worker"))
    return {"wall_s": wall, "peak_mib": peak / 2**20, "worker_mib": worker / 2**20, "stdout": out}


def cli(home: Path) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["POLICY_TOPICS_HOME"] = str(home)
    return [sys.executable, "-m", "policy_topics.cli"], env


def trained_model(home: Path) -> str:
    command, env = cli(home)
    subprocess.run([*command, "train", "tracking.register_as=bench-spark"], env=env, check=True,
                   capture_output=True, text=True)
    return "models:/bench-spark/1"


def constant(text: pd.Series) -> pd.DataFrame:
    """A UDF of the model's shape that does no work: a constant struct per text."""
    return pd.DataFrame({"topic": "x", "code": 1.0, "probability": 0.5, "status": "coded",
                         "top_topics": [[{"topic": "x", "code": 1, "probability": 0.5}]] * len(text)})


def breakdown(home: str, model: str, data: str, master: str) -> dict:
    """Where the time of one Spark run goes (run in its own process: ``--worker``)."""
    os.environ["POLICY_TOPICS_HOME"] = home
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    from policy_topics.serving.spark import RESULT_TYPE, SparkSettings, prediction_columns, session, topic_udf
    from policy_topics.tracking.registry import load, resolve

    times: dict[str, float] = {}
    start = time.perf_counter()
    spark = session(SparkSettings.load(master))
    times["session_s"] = time.perf_counter() - start
    resolved = resolve(model)
    start = time.perf_counter()
    predict = topic_udf(spark, resolved.uri)
    times["udf_setup_s"] = time.perf_counter() - start

    identity = pandas_udf(constant, RESULT_TYPE)  # type: ignore[call-overload]
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        frame = spark.read.parquet(data)
        for name, udf, argument in (("identity_job_s", identity, F.col("text")),
                                    ("model_job_s", predict, F.struct(F.col("text")))):
            start = time.perf_counter()
            result = frame.withColumn("_p", udf(argument)).select("text", *prediction_columns(F.col("_p")))
            result.write.parquet(f"{tmp}/{name}")
            times[name] = time.perf_counter() - start
    times["partitions"] = frame.rdd.getNumPartitions()
    spark.stop()
    start = time.perf_counter()
    predictor = load(resolved).predictor
    times["model_load_s"] = time.perf_counter() - start
    texts = pq.read_table(data, columns=["text"]).column(0).to_pylist()
    start = time.perf_counter()
    for i in range(0, len(texts), 5000):
        predictor.predict_records(texts[i:i + 5000])
    times["predict_one_process_s"] = time.perf_counter() - start
    return times


def table(rows: list[dict], docs: int) -> str:
    lines = ["| engine | documents | runs | wall s | docs/s | peak MiB (tree) | Python worker MiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for engine in dict.fromkeys(r["engine"] for r in rows):
        runs = [r for r in rows if r["engine"] == engine]
        wall = statistics.median(r["wall_s"] for r in runs)
        worker = statistics.median(r["worker_mib"] for r in runs)
        lines.append(f"| {engine} | {docs:,} | {len(runs)} | {wall:.1f} | {docs / wall:,.0f} | "
                     f"{statistics.median(r['peak_mib'] for r in runs):,.0f} | {f'{worker:,.0f}' if worker else '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="end-to-end runs per engine (medians in the table)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--home", type=Path, help="project home of an existing store (default: a temp one, "
                                                  "with a model trained on the demo corpus)")
    parser.add_argument("--model", help="model of --home (default: the one trained)")
    parser.add_argument("--results", type=Path, help="also write the measurements to this JSON file")
    parser.add_argument("--worker", nargs=4, metavar=("HOME", "MODEL", "DATA", "MASTER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(breakdown(*args.worker)))
        return
    with tempfile.TemporaryDirectory(prefix="policy-topics-bench-spark-") as tmp:
        home = args.home or Path(tmp) / "home"
        home.mkdir(exist_ok=True)
        model = args.model or trained_model(home)
        data = Path(tmp) / "docs.parquet"
        generate(args.docs, data)
        command, env = cli(home)
        rows = []
        for run in range(args.runs):
            for engine, extra in (("batch", []),
                                  (f"spark {args.master}", ["--engine", "spark", "--master", args.master])):
                out = Path(tmp) / f"out-{run}-{engine.split()[0]}{'' if extra else '.parquet'}"
                result = measured([*command, "predict", "--model", model, "--input", str(data), "--output", str(out),
                                   "--no-progress", *extra], env)
                rows.append({"engine": engine, **{k: v for k, v in result.items() if k != "stdout"}})
                print(f"  {engine} run {run + 1}: {result['wall_s']:.1f} s, peak {result['peak_mib']:,.0f} MiB, "
                      f"worker {result['worker_mib']:,.0f} MiB", flush=True)
        split = measured([sys.executable, __file__, "--worker", str(home), model, str(data), args.master], env)
        parts = json.loads(split["stdout"].strip().splitlines()[-1])
    print()
    print(table(rows, args.docs))
    print()
    print("| Spark step | s |\n|---|---:|")
    for key, value in parts.items():
        print(f"| {key.removesuffix('_s').replace('_', ' ')} | {value:.1f} |" if key.endswith("_s")
              else f"| {key} | {value} |")
    if args.results:
        args.results.write_text(json.dumps({"docs": args.docs, "runs": rows, "breakdown": parts}, indent=2))


if __name__ == "__main__":
    main()
