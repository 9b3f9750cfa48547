"""Benchmark: do the intervals of a coded 200-document sample cover the true figures of the corpus it was
drawn from?

    make bench-sample-coverage                      # = python experiments/sample_coverage.py
    python experiments/sample_coverage.py --seeds 20 --n 200 --target 0.9 --out outputs/sample_coverage
    python experiments/sample_coverage.py --data demo --seeds 3 --n 60      # the quick check on the demo corpus

The reference dataset (``--data``, default uscongress, read through the data-mirror setting like ``policy-topics
train``) is prepared as ``train`` prepares it; a stratified half of its rows trains the default model (the
project's own pipeline and settings) and the other half is held back as the "target corpus", whose true codes
are known. For each seed, a sample of ``--n`` held-back documents is drawn as ``policy-topics sample`` draws it
(random, and stratified by predicted topic), scored with the same estimation code as ``policy-topics evaluate
coded_sample=...``, and each 95% interval is checked against the true figure of the whole held-back half:
overall accuracy, macro-F1, and at the threshold the sample chose for ``--target`` accuracy, the accuracy of the
auto-coded share and the share auto-coded. An interval "covers" when the true figure lies inside it.

Writes ``sample_coverage.json`` and ``sample_coverage.md`` in ``--out`` (default ``outputs/sample_coverage``,
gitignored): per-seed intervals and true figures, aggregate only; no texts.
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
MIRROR_ENV = "POLICY_TOPICS_DATA_MIRROR"
FIGURES = ("accuracy", "macro_f1", "accuracy_at_threshold", "coverage_at_threshold")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="uscongress", help="reference dataset config (default uscongress)")
    parser.add_argument("--seeds", type=int, default=20, help="samples drawn, seeds 0..N-1 (default 20)")
    parser.add_argument("--n", type=int, default=200, help="documents per sample (default 200)")
    parser.add_argument("--target", type=float, default=0.9, help="target accuracy of the threshold (default 0.9)")
    parser.add_argument("--target-data", default=None, help="a second dataset config as the target corpus (e.g. "
                        "nytimes: every row of it), the model fit on half of --data; default: the held-back half")
    parser.add_argument("--designs", default="random,stratified", help="random, stratified or both")
    parser.add_argument("--mirror", type=Path, default=None, help=f"data mirror (default: ${MIRROR_ENV}, or "
                                                                  "../shared/data/cap)")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "sample_coverage", help="folder of the results")
    return parser.parse_args(argv)


def compose(home: Path, mirror: Path | None, *overrides: str) -> dict[str, Any]:
    """``conf/train.yaml`` with ``overrides``, resolved, as ``policy-topics train`` composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from policy_topics.paths import config_dir, register_resolvers

    register_resolvers()
    extra = [f"paths.data_mirror={mirror}"] if mirror else []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[f"paths.home_dir={home}", *extra, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def held_back(cfg: dict[str, Any], other: dict[str, Any] | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The held-back half (text, label), or every row of the ``other`` dataset, and the model's probabilities on
    it and its classes, the model fit on the (other) half."""
    from sklearn.model_selection import train_test_split

    from policy_topics.data.prep import prepare_dataset
    from policy_topics.jobs.analysis import cv_frame
    from policy_topics.jobs.fitting import fit_one
    from policy_topics.models.pipeline import probabilities

    rows = cv_frame(prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"]).splits)
    train, held = train_test_split(rows, test_size=0.5, stratify=rows["label"], random_state=0)
    pipeline = fit_one(cfg["features"], cfg["model"], train, int(cfg["blas_threads"]))
    if other is not None:
        held = cv_frame(prepare_dataset(other["data"], other["prep"], other["paths"]).splits)
    held = held.reset_index(drop=True)
    return held, probabilities(pipeline, held["text"].tolist()), np.asarray(pipeline.classes_)


def truths(human: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, threshold: float | None) -> dict:
    """The true figures of the whole corpus: accuracy, macro-F1 (over its true topics) and, at ``threshold``, the
    share auto-coded and the accuracy of that share."""
    from policy_topics.evaluation.target import macro_f1

    correct = human == predicted
    found = {"accuracy": float(correct.mean()), "macro_f1": macro_f1(human, predicted, np.ones(len(human)))}
    if threshold is not None:
        coded = confidence >= threshold
        found.update(accuracy_at_threshold=float(correct[coded].mean()), coverage_at_threshold=float(coded.mean()))
    return found


def coverage_check(human: np.ndarray, proba: np.ndarray, classes: np.ndarray, seeds: int, n: int, target: float,
                   stratified: bool, resamples: int | None = None) -> pd.DataFrame:
    """One row per seed: each figure's interval from a sample of ``n`` and the corpus's true figure
    (``resamples``: of the macro-F1 bootstrap, as ``evaluate`` does by default)."""
    from policy_topics.evaluation.coverage import thresholds
    from policy_topics.evaluation.target import RESAMPLES, Design, estimate
    from policy_topics.jobs.sample import draw

    predicted, confidence = classes[np.argmax(proba, axis=1)], proba.max(axis=1)
    strata = predicted if stratified else None
    sizes = pd.Series(predicted).value_counts().to_dict()
    rows = []
    for seed in range(seeds):
        picked = draw(len(human), n, seed, strata)
        design = Design(predicted[picked], sizes) if stratified else Design.simple(n, len(human))
        found = estimate(human[picked], predicted[picked], confidence[picked], design, thresholds(0.01), target, seed,
                         resamples or RESAMPLES)
        metrics = found.metrics()
        truth = truths(human, predicted, confidence, found.choice.threshold)
        row: dict[str, Any] = {"seed": seed, "threshold": found.choice.threshold, "advice": found.choice.advice,
                               "target_met": None if found.choice.threshold is None else
                               bool(truth["accuracy_at_threshold"] >= target)}
        for figure in FIGURES:
            key = f"sample_{figure}" if figure in ("accuracy", "macro_f1") else f"sample_{figure.split('_at_')[0]}"
            suffix = "" if figure in ("accuracy", "macro_f1") else "_at_threshold"
            low, value, high = (metrics.get(f"{key}{part}{suffix}") for part in ("_low", "", "_high"))
            true = truth.get(figure)
            row.update({f"{figure}_low": low, f"{figure}": value, f"{figure}_high": high, f"{figure}_true": true,
                        f"{figure}_covered": None if true is None or low is None else bool(low <= true <= high)})
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> dict[str, Any]:
    """Per figure: how many seeds' intervals covered the truth, of how many that had one; mean interval width."""
    chosen = table["accuracy_at_threshold_true"].notna()
    out: dict[str, Any] = {"seeds": len(table), "threshold_chosen": int(chosen.sum()),
                           "true_accuracy_reached_target": int(table.loc[chosen, "target_met"].astype(bool).sum())}
    for figure in FIGURES:
        had = table[f"{figure}_covered"].notna()
        out[figure] = {"covered": int(table.loc[had, f"{figure}_covered"].astype(bool).sum()), "of": int(had.sum()),
                       "seeds": len(table),
                       "mean_width": float((table[f"{figure}_high"] - table[f"{figure}_low"])[had].mean())
                       if had.any() else None}
    return out


def markdown(results: dict[str, Any]) -> str:
    where = (f"all {results['held_back_docs']:,} documents of {results['target_data']}; model trained on half of "
             f"{results['data']}" if results.get("target_data") else
             f"the held-back half of {results['data']}, {results['held_back_docs']:,} documents; model trained on the "
             "other half")
    lines = [f"# Interval coverage of a coded sample (n={results['n']}, target {results['target']:.0%})", "",
             f"Target corpus: {where}. {results['machine']}, {results['date']}, {results['seconds']:.0f} s.", "",
             "| design | figure | seeds with an interval | intervals covering the truth | mean width |",
             "|---|---|---:|---:|---:|"]
    met = [f"{design}: {v['summary']['true_accuracy_reached_target']} of {v['summary']['threshold_chosen']}"
           for design, v in results["designs"].items()]
    lines[4:4] = [f"Seeds whose chosen threshold truly reached the target accuracy: {'; '.join(met)}.", ""]
    for design, summary in results["designs"].items():
        for figure in FIGURES:
            s = summary["summary"][figure]
            width = "-" if s["mean_width"] is None else f"{s['mean_width']:.3f}"
            lines.append(f"| {design} | {figure.replace('_', ' ')} | {s['of']} of {s['seeds']} | {s['covered']} of "
                         f"{s['of']} | {width} |")
    return "\n".join(lines) + "\n"


def _line(row: dict[str, Any]) -> str:
    if row["threshold"] is None or pd.isna(row["threshold"]):
        return f"no threshold ({row['advice']})"
    verdict = "covered" if row["accuracy_at_threshold_covered"] else "MISSED"
    return (f"threshold {row['threshold']:.2f}: accuracy {row['accuracy_at_threshold']:.3f} (95% CI "
            f"{row['accuracy_at_threshold_low']:.3f}-{row['accuracy_at_threshold_high']:.3f}), true "
            f"{row['accuracy_at_threshold_true']:.3f} {verdict}; share auto-coded {row['coverage_at_threshold']:.3f}, "
            f"true {row['coverage_at_threshold_true']:.3f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = os.environ.get(MIRROR_ENV)
    mirror = args.mirror or (Path(env) if env else (REPO.parent / "shared" / "data" / "cap"))
    if args.data != "demo" and not mirror.is_dir():
        print(f"error: no data mirror at {mirror}: pass --mirror or set {MIRROR_ENV}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sample-coverage-") as home:
        given = mirror if args.data != "demo" else None
        cfg = compose(Path(home), given, f"data={args.data}")
        other = compose(Path(home), given, f"data={args.target_data}") if args.target_data else None
        held, proba, classes = held_back(cfg, other)
    human = held["label"].to_numpy()
    results: dict[str, Any] = {"data": args.data, "target_data": args.target_data, "n": args.n,
                               "target": args.target, "held_back_docs": len(held),
                               "machine": f"{platform.machine()} VM, {os.cpu_count()} cores (shared with other work)",
                               "date": datetime.now(UTC).date().isoformat(), "designs": {}}
    for design in args.designs.split(","):
        table = coverage_check(human, proba, classes, args.seeds, args.n, args.target, design == "stratified")
        results["designs"][design] = {"summary": summarise(table), "seeds": table.to_dict("records")}
        for row in table.to_dict("records"):
            print(f"  {design} seed {row['seed']:2d}: {_line(row)}", flush=True)
    results["seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sample_coverage.json").write_text(json.dumps(results, indent=1, default=str))
    (args.out / "sample_coverage.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
