"""Benchmark: the project's configs against fastText and MiniLM sentence embeddings (issue 7, items 1 and 4).

    make bench-peers                                   # = python experiments/bench_peers.py
    python experiments/bench_peers.py --presets uscongress_best,nytimes_tfidf
    python experiments/bench_peers.py --systems project --presets NAME --merge   # add rows, keep the others

On uscongress and nytimes (Title only), 5 folds of the raw rows (see experiments/peers.py for the exact
protocol), and cross-domain (fit on uscongress, score nytimes): accuracy, macro-F1 and weighted-F1 (mean
and std over folds), fit and tuning time, in-process batch prediction throughput (texts/s) and model size.
Writes experiments/results/peers.json and peers.md (aggregate figures only: no rows, no predictions).

Systems: ``fasttext`` and ``minilm`` (the peers; ``pip install -e '.[bench]'``) and ``project``: the
project default (features=word_char model=linearsvc) plus every preset given with ``--presets``, composed
as ``policy-topics train experiment=NAME`` composes it. A preset runs on the dataset it selects
(``data=...``; cross-domain too when that is uscongress), or on all with ``--presets-everywhere``.
Needs the data mirror (POLICY_TOPICS_DATA_MIRROR, or ../shared/data/cap beside the checkout). Sentence
embeddings are cached per dataset file (by its sha256) in --cache-dir, outside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers

RESULTS = peers.REPO / "experiments" / "results"
SYSTEMS = ("fasttext", "minilm", "project")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated, of {', '.join(SYSTEMS)} (default: all)")
    parser.add_argument("--presets", default="", help="conf/experiment presets to run besides the project default")
    parser.add_argument("--overrides", action="append", default=[], metavar="'KEY=VALUE ...'",
                        help="a project config as Hydra overrides of the defaults, e.g. 'features=word_char_minilm "
                        "model=ridge' (repeatable; runs on every dataset)")
    parser.add_argument("--no-default", action="store_true", help="leave out the project default")
    parser.add_argument("--presets-everywhere", action="store_true",
                        help="run presets on every dataset, not only on the one they select")
    parser.add_argument("--datasets", default=",".join(peers.ALL_DATASETS),
                        help=f"comma-separated, of {', '.join(peers.ALL_DATASETS)} (default: all)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other systems' rows of the existing results file (same protocol and data)")
    parser.add_argument("--rows", type=int, default=None,
                        help="smoke run: a stratified sample of this many rows per file (not the protocol)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of peers.json and peers.md")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "policy-topics-bench-cache",
                        help="sentence-embedding cache (outside the repository)")
    return parser.parse_args(argv)


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build_systems(args: argparse.Namespace) -> list[tuple[peers.System, tuple[str, ...]]]:
    """The systems to run, each with the datasets it runs on; fails early (one line) on a missing
    library or an unknown preset, before anything slow starts."""
    chosen = split_list(args.systems)
    unknown = sorted(set(chosen) - set(SYSTEMS))
    if unknown:
        raise peers.BenchError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    datasets = tuple(split_list(args.datasets))
    bad = sorted(set(datasets) - set(peers.ALL_DATASETS))
    if bad:
        raise peers.BenchError(f"unknown dataset(s) {', '.join(bad)}; choose from {', '.join(peers.ALL_DATASETS)}")
    systems: list[tuple[peers.System, tuple[str, ...]]] = []
    if "fasttext" in chosen:
        systems.append((peers.FastTextSystem(), datasets))
    if "minilm" in chosen:
        systems.append((peers.MiniLMSystem(args.cache_dir), datasets))
    if "project" in chosen:
        if not args.no_default:
            systems.append((peers.ProjectSystem(), datasets))
        for preset in split_list(args.presets):
            system = peers.ProjectSystem(preset)
            own = system.data_name
            if args.presets_everywhere or own not in peers.DATASET_NAMES:
                where = datasets
            else:
                where = tuple(d for d in datasets if d == own or (d == peers.CROSS and own == "uscongress"))
            systems.append((system, where))
        for overrides in args.overrides:
            systems.append((peers.ProjectSystem(overrides=overrides.split()), datasets))
    return systems


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                        ("TRANSFORMERS_VERBOSITY", "error")):
        os.environ.setdefault(name, value)
    started = time.perf_counter()
    try:
        systems = build_systems(args)
        mirror = peers.mirror_dir()
    except peers.BenchError as exc:
        sys.exit(f"bench_peers: {exc}")
    corpora = {name: peers.load_raw(name, mirror) for name in peers.DATASET_NAMES}
    if args.rows:
        corpora = {name: peers.sample(corpus, args.rows) for name, corpus in corpora.items()}
    protocol, data = peers.protocol(corpora, args.rows)
    print(f"bench_peers: {', '.join(f'{n} {len(c):,} rows' for n, c in corpora.items())}; "
          f"{len(systems)} systems -> {args.out}", flush=True)

    command = peers.command_line()
    entries = []
    for system, datasets in systems:
        if isinstance(system, peers.MiniLMSystem):
            for corpus in corpora.values():
                seconds = time.perf_counter()
                system.add_corpus(corpus)
                print(f"  MiniLM embeddings of {corpus.name}: {time.perf_counter() - seconds:.1f} s "
                      f"(cache {args.cache_dir})", flush=True)
            for corpus in corpora.values():
                rate = system.measure_throughput(corpus)
                print(f"  MiniLM embedding throughput on {corpus.name} (uncached): {rate:,.0f} texts/s", flush=True)
        results = {}
        for dataset in datasets:
            print(f"  {system.name} on {dataset}", flush=True)
            splits, labels = peers.dataset_splits(corpora, dataset)
            results[dataset] = peers.evaluate(system, splits, labels, log=print)
            r = results[dataset]
            print(f"  => macro-F1 {r['macro_f1_mean']:.3f} ± {r['macro_f1_std']:.3f}, accuracy "
                  f"{r['accuracy_mean']:.3f}, predict {r['predict_texts_per_s']:,.0f} texts/s", flush=True)
        entries.append(peers.system_entry(system, results, command))

    json_path, md_path = args.out / "peers.json", args.out / "peers.md"
    previous = json.loads(json_path.read_text()) if args.merge and json_path.is_file() else None
    document = peers.merge(previous, entries, {"protocol": protocol, "data": data})
    peers.write_results(document, json_path, md_path)
    print("\n".join(peers.table(document)))
    print(f"bench_peers: wrote {json_path} and {md_path} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
