"""Benchmark at scale: training throughput and peak memory of the in-memory TF-IDF path, the out-of-core
hashing path (``experiment=out_of_core``) and fastText, on the same synthetic documents.

    python experiments/bench_scale.py --sizes 100000,1000000 --runs 3      (make bench-scale)
    python experiments/bench_scale.py --sizes 1000000 --runs 3 --in-memory-runs 1 --paths out_of_core,fasttext

Synthetic corpora: N documents drawn (with replacement, seeded) from the shipped demo corpus
(``data/demo/cap_demo.csv``, 924 documents written for this project) with the tokens of each shuffled,
written to Parquet in a temp folder (removed at the end; nothing is committed). They measure cost, not
accuracy: every synthetic document is a reshuffle of one of 924 texts, so scores on them mean nothing
(accuracy is measured on uscongress with the train command, see README).

Each measurement runs in its own process: the time from reading the Parquet file to the fitted model
(``fit s``; docs/s = N / fit s), the wall time of the whole process including imports (``wall s``), and
the peak memory of the process tree (the sum of the resident memory of the process and its children,
polled every 50 ms, so the out-of-core path's hashing workers are counted).

* ``in_memory``: the default features (word + char_wb TF-IDF) with ``model=sgd``, fitted on a DataFrame
  of all N documents, as ``policy-topics train model=sgd`` fits.
* ``out_of_core``: ``experiment=out_of_core``: Parquet record batches hashed in worker processes,
  ``SGDClassifier.partial_fit`` over the cached batches (``policy_topics.models.out_of_core.fit_stream``).
* ``fasttext``: fastText supervised (``pip install -e '.[bench]'``: fasttext-wheel; skipped with a message
  when it is missing), with the settings that did best on these data (lr 1.0, 25 epochs, punctuation split
  off words, 2 threads); the time includes writing its input file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo" / "cap_demo.csv"
PATHS = ("in_memory", "out_of_core", "fasttext")


# --- synthetic data ------------------------------------------------------------------------------


def generate(n: int, path: Path, seed: int = 0) -> None:
    """N documents sampled from the demo corpus, tokens shuffled within each, as Parquet (text, label)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    demo = pd.read_csv(DEMO)
    tokens = [str(t).split() for t in demo["text"]]
    labels = demo["major"].astype("int64").to_numpy()
    rng = np.random.default_rng(seed)
    schema = pa.schema([("text", pa.large_string()), ("label", pa.int64())])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, n, 100_000):
            rows = rng.integers(0, len(tokens), min(100_000, n - start))
            texts = []
            for row in rows:
                words = list(tokens[row])
                rng.shuffle(words)
                texts.append(" ".join(words))
            writer.write_table(pa.table({"text": texts, "label": labels[rows]}, schema=schema))
    tmp.rename(path)


# --- workers (one per measurement, in their own process) ------------------------------------------


def _config(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from policy_topics.paths import config_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)  # type: ignore[return-value]


def work_in_memory(data: Path) -> dict:
    import pandas as pd

    from policy_topics.models.pipeline import fit_pipeline, fitting

    cfg = _config(["model=sgd"])
    start = time.perf_counter()
    frame = pd.read_parquet(data)
    with fitting(int(cfg["blas_threads"])):
        fit_pipeline(cfg["features"], cfg["model"], frame)
    return {"docs": len(frame), "fit_s": time.perf_counter() - start}


def work_out_of_core(data: Path) -> dict:
    from policy_topics.models.out_of_core import StreamSettings, fit_stream

    cfg = _config(["experiment=out_of_core", *os.environ.get("BENCH_SCALE_OVERRIDES", "").split()])
    start = time.perf_counter()
    fitted = fit_stream(cfg["features"], cfg["model"], [data], seed=int(cfg["seed"]))
    settings = StreamSettings.from_config(cfg["model"]["stream"])
    return {"docs": fitted.n_docs, "fit_s": time.perf_counter() - start, "epochs": settings.epochs_for(fitted.n_docs),
            **{f"{k}_s": v for k, v in fitted.seconds.items()}}


_PUNCT = re.compile(r"([^\w\s])")


def work_fasttext(data: Path) -> dict:
    import fasttext
    import pyarrow.parquet as pq

    start = time.perf_counter()
    docs = 0
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        for batch in pq.ParquetFile(data).iter_batches(batch_size=50_000):
            for text, label in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                spaced = _PUNCT.sub(r" \1 ", text.lower())
                fh.write(f"__label__{label} {spaced}\n")
                docs += 1
    try:
        fasttext.train_supervised(fh.name, lr=1.0, epoch=25, thread=2, verbose=0)
    finally:
        os.unlink(fh.name)
    return {"docs": docs, "fit_s": time.perf_counter() - start}


# --- measuring -----------------------------------------------------------------------------------


def process_tree(pid: int) -> list[tuple[int, int, str]]:
    """(pid, resident bytes, command line) of ``pid`` and all its descendants (from /proc)."""
    found, stack, page = [], [pid], os.sysconf("SC_PAGE_SIZE")
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as fh:
                rss = int(fh.read().split()[1]) * page
            with open(f"/proc/{current}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            found.append((current, rss, cmd))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return found


def run_polled(cmd: list[str], env: dict[str, str] | None = None,
               marks: tuple[str, ...] = ()) -> tuple[str, float, int, int]:
    """Run ``cmd``, polling its process tree every 50 ms: (stdout, wall s, peak bytes of the tree, peak bytes
    of the largest single process whose command line holds one of ``marks``). Raises on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak, marked, done = [0], [0], threading.Event()

    def poll() -> None:
        while not done.is_set():
            tree = process_tree(proc.pid)
            peak[0] = max(peak[0], sum(rss for _, rss, _ in tree))
            marked[0] = max([marked[0]] + [rss for _, rss, c in tree if any(m in c for m in marks)])
            done.wait(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = proc.communicate()
    done.set()
    poller.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return out, time.perf_counter() - start, peak[0], marked[0]


def measure(kind: str, data: Path) -> dict:
    """Run one worker process; its result plus wall time and peak memory of its process tree."""
    out, wall, peak, _ = run_polled([sys.executable, __file__, "--worker", kind, "--data", str(data)])
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "kind": kind, "wall_s": wall, "peak_mib": peak / 2**20,
            "docs_per_s": result["docs"] / result["fit_s"]}


def fasttext_available() -> bool:
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return False
    return True


def table(results: list[dict]) -> str:
    lines = [f"| {'path':<12} | {'docs':>9} | runs | {'fit s':>7} | {'docs/s':>7} | {'peak MiB':>8} | {'wall s':>7} |",
             f"|{'-' * 14}|{'-' * 11}:|-----:|{'-' * 8}:|{'-' * 8}:|{'-' * 9}:|{'-' * 8}:|"]
    keys = sorted({(r["docs"], PATHS.index(r["kind"]), r["kind"]) for r in results})
    for docs, _, kind in keys:
        rows = [r for r in results if r["docs"] == docs and r["kind"] == kind]
        med = {k: statistics.median(r[k] for r in rows) for k in ("fit_s", "docs_per_s", "peak_mib", "wall_s")}
        lines.append(f"| {kind:<12} | {docs:>9,} | {len(rows):>4} | {med['fit_s']:7.1f} | {med['docs_per_s']:7,.0f} | "
                     f"{med['peak_mib']:8,.0f} | {med['wall_s']:7.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="corpus sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per path and size (the table shows medians)")
    parser.add_argument("--in-memory-runs", type=int, default=None,
                        help="runs of the in-memory path at sizes >= 1M (default: --runs; it needs ~10 GB and "
                             "~15 min per run at 1M)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"which of {', '.join(PATHS)}")
    parser.add_argument("--results", type=Path, default=None, help="also append each measurement to this JSONL file")
    parser.add_argument("--overrides", default="", help="Hydra overrides of the out-of-core path, space-separated, "
                        "e.g. 'model.stream.batch_size=5000'")
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work = {"in_memory": work_in_memory, "out_of_core": work_out_of_core, "fasttext": work_fasttext}
        print(json.dumps(work[args.worker](args.data)))
        return

    os.environ["BENCH_SCALE_OVERRIDES"] = args.overrides
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        sys.exit(f"error: unknown path {unknown[0]}; use some of {', '.join(PATHS)}")
    if "fasttext" in paths and not fasttext_available():
        print("fastText skipped: the fasttext module is not installed (pip install -e '.[bench]')", file=sys.stderr)
        paths.remove("fasttext")
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="policy-topics-bench-scale-") as tmp:
        for n in sizes:
            data = Path(tmp) / f"synthetic-{n}.parquet"
            start = time.perf_counter()
            generate(n, data)
            print(f"{n:,} synthetic documents in {time.perf_counter() - start:.1f} s "
                  f"({data.stat().st_size / 2**20:.0f} MiB Parquet)", flush=True)
            for kind in paths:
                big_in_memory = kind == "in_memory" and n >= 1_000_000 and args.in_memory_runs
                runs = args.in_memory_runs if big_in_memory else args.runs
                for run in range(1, runs + 1):
                    result = measure(kind, data)
                    results.append(result)
                    print(f"  {kind:<12} {n:>9,} run {run}: fit {result['fit_s']:.1f} s, "
                          f"{result['docs_per_s']:,.0f} docs/s, peak {result['peak_mib']:,.0f} MiB, "
                          f"wall {result['wall_s']:.1f} s", flush=True)
                    if args.results:
                        with args.results.open("a") as fh:
                            fh.write(json.dumps(result) + "\n")
            data.unlink()
    print()
    print(table(results))


if __name__ == "__main__":
    main()
