"""Benchmark: the CAP law datasets of six countries on their fixed test splits, against published baselines.

    make bench-laws                                       # = python experiments/cap_laws_benchmark.py
    python experiments/cap_laws_benchmark.py --countries uk,dk --out /tmp/laws
    python experiments/cap_laws_benchmark.py --pooling    # also: UK acts <-> US bill titles pooled

For each country (``data=cap_laws_<cc>``, read through the data-mirror setting like ``policy-topics train``):
the preset (``--preset``, default ``cap_laws``) and the plain TF-IDF bar are each fit on train + validation
with the project's own pipeline (``fit_one``, as ``train`` fits its final model, probability calibration
included), and each test split is scored once. The plain bar is also scored from its raw SVM scores, as the
published bar was. Beside them: the prediction files of the published models (``cap_laws/peers/*.csv``)
scored against the same test labels at run time, and the zero-shot LLM figures of the benchmark's leaderboard
(published numbers, below). Weighted F1 (the benchmark's headline), accuracy, macro-F1, fit and evaluation
seconds, and weighted F1 on the test rows whose text is not among the training rows.

``--pooling``: does pooling the UK acts with the uscongress bill titles help either one? Through the ``pool``
mechanism (``+data@pool.<name>=...``), the pool weight is chosen on the main dataset's validation split only
(fit on train + pool, from none, 0.1, 0.3, 1), then the chosen one is refit on train + validation and scored
on the test split once; when a pool is chosen, the unpooled fit is scored on test beside it, as its reference.

Writes ``cap_laws.json`` and ``cap_laws.md`` in ``--out`` (default ``outputs/cap_laws``, gitignored): aggregate
figures only, no rows, no predictions.
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
COUNTRIES = ("uk", "dk", "fr", "es", "hu", "br")
# The plain bar of the data README: word 1-2 + char_wb 2-5 TF-IDF, sublinear tf, char min_df 2, LinearSVC(C=0.5)
# with scikit-learn's defaults otherwise (no accent folding, no class weights, tol 1e-4).
PLAIN = ("features=word_char", "features.word.strip_accents=null", "features.char.strip_accents=null",
         "features.char.ngram_range=[2,5]", "features.char.min_df=2", "features.char.max_df=1.0", "model=linearsvc",
         "model.estimator.C=0.5", "model.estimator.class_weight=null", "model.estimator.tol=0.0001",
         "model.estimator.max_iter=1000")
# Published figures: weighted F1 of the best zero-shot LLM per language on the TextClass-Benchmark leaderboard
# (repository bgonzalezbustamante/TextClass-Benchmark, docs/_posts/*-leaderboard-policy-<language>.md, commit
# 75d5a411312d6dc85e4685089e28f1f25eb51295; quoted in the data mirror's cap_laws/README.md).
LEADERBOARD_LLM = {"uk": ("GPT-4o", 0.687), "dk": ("GPT-4o", 0.662), "fr": ("Gemini 1.5 Pro", 0.649),
                   "es": ("GPT-4o", 0.714), "hu": ("GPT-4o", 0.653), "br": ("Gemini 1.5 Pro", 0.621)}
POOL_WEIGHTS = (0.1, 0.3, 1.0)
METRICS = ("weighted_f1", "accuracy", "macro_f1")


class BenchError(RuntimeError):
    """A one-line problem the user can fix (no data mirror, unknown preset)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cap_laws", help="conf/experiment preset to benchmark (default cap_laws)")
    parser.add_argument("--countries", default=",".join(COUNTRIES), help=f"comma-separated, of {', '.join(COUNTRIES)}")
    parser.add_argument("--mirror", type=Path, default=None,
                        help=f"data mirror root holding cap_laws/ (default: ${MIRROR_ENV}, or ../shared/data)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override of the preset (repeatable), e.g. model.topic_balance=0.5")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="validation: fit on train and score validation (choosing a preset; no peers)")
    parser.add_argument("--pooling", action="store_true", help="also measure UK acts <-> uscongress pooling")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "cap_laws", help="folder of the results")
    return parser.parse_args(argv)


def mirror_root(given: Path | None) -> Path:
    env = os.environ.get(MIRROR_ENV)
    root = given or (Path(env) if env else REPO.parent / "shared" / "data")
    if not (root / "cap_laws" / "UK" / "X_train.csv").is_file():
        raise BenchError(f"no CAP law files under {root / 'cap_laws'}: pass --mirror or set {MIRROR_ENV}")
    return root


def compose(home: Path, mirror: Path, *overrides: str) -> dict[str, Any]:
    """``conf/train.yaml`` with ``overrides``, resolved, as ``policy-topics train`` composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from policy_topics.paths import config_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[f"paths.home_dir={home}", f"paths.data_mirror={mirror}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def fit_and_score(cfg: dict[str, Any], train: pd.DataFrame, held_out: pd.DataFrame, calibrate: bool | None = None,
                  pool: pd.DataFrame | None = None) -> dict[str, float]:
    """Fit the configured pipeline on ``train`` (+ ``pool``) and score ``held_out`` once: the metrics, those on
    the held-out rows whose text is not among the training rows (``unseen_weighted_f1``), and the seconds."""
    from policy_topics.evaluation.metrics import score, unseen_rows
    from policy_topics.jobs.fitting import fit_one
    from policy_topics.models.pipeline import probabilities

    start = time.perf_counter()
    pipeline = fit_one(cfg["features"], cfg["model"], train, int(cfg["blas_threads"]), calibrate, pool)
    fitted = time.perf_counter()
    texts = held_out["text"].tolist()
    evaluation = score(held_out["label"].to_numpy(), probabilities(pipeline, texts), pipeline.classes_, "test", texts)
    done = time.perf_counter()
    result = {k: evaluation.metrics[k] for k in METRICS}
    unseen = unseen_rows(evaluation, train["text"])
    result["unseen_weighted_f1"] = unseen.metrics["weighted_f1"] if unseen else float("nan")
    result["unseen_docs"] = int(unseen.metrics["n_docs"]) if unseen else 0
    result.update(fit_s=fitted - start, evaluate_s=done - fitted, train_docs=len(train), test_docs=len(held_out))
    return result


def peers(mirror: Path, country: str, y_test: np.ndarray) -> dict[str, dict[str, float]]:
    """The published models' prediction files for this country, scored against the test labels."""
    from sklearn.metrics import accuracy_score, f1_score

    found = {}
    for path in sorted((mirror / "cap_laws" / "peers").glob(f"{country.upper()}__*.csv")):
        predicted = pd.read_csv(path, dtype=str, keep_default_na=False)["annotation"]
        codes = pd.to_numeric(predicted, errors="coerce").fillna(-1).astype(int).to_numpy()
        if len(codes) != len(y_test):
            raise BenchError(f"{path.name} has {len(codes):,} rows, the test split {len(y_test):,}")
        found[path.stem.split("__", 1)[1]] = {
            "weighted_f1": float(f1_score(y_test, codes, average="weighted", zero_division=0)),
            "accuracy": float(accuracy_score(y_test, codes)),
            "macro_f1": float(f1_score(y_test, codes, average="macro", labels=np.unique(y_test), zero_division=0))}
    return found


def country_rows(country: str, preset: tuple[str, ...], home: Path, mirror: Path, split: str) -> dict[str, Any]:
    """The preset, the plain bar (as ``train`` fits it, and from raw SVM scores) and, on the test split, the
    peers on one country; on the validation split, fit on train only."""
    from policy_topics import taxonomy
    from policy_topics.data.prep import prepare_dataset
    from policy_topics.jobs.analysis import final_training_rows

    systems: dict[str, dict[str, float]] = {}
    runs = ((f"preset {' '.join(preset).removeprefix('experiment=')}", preset, None), ("plain TF-IDF", PLAIN, None),
            ("plain TF-IDF, raw SVM scores", PLAIN, False))
    for name, overrides, calibrate in runs:
        cfg = compose(home, mirror, f"data=cap_laws_{country}", *overrides)
        with taxonomy.named(cfg["data"].get("extra_topics")):
            prepared = prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"])
            train = final_training_rows(cfg, prepared.splits) if split == "test" else prepared.splits["train"]
            systems[name] = fit_and_score(cfg, train, prepared.splits[split], calibrate)
        print(f"  {country} {name}: {split} weighted F1 {systems[name]['weighted_f1']:.3f} "
              f"(fit {systems[name]['fit_s']:.1f} s)", flush=True)
    if split == "validation":
        return {"language": cfg["data"]["language"]["name"], "systems": systems}
    systems.update(peers(mirror, country, prepared.splits["test"]["label"].to_numpy()))
    llm, figure = LEADERBOARD_LLM[country]
    systems[f"best zero-shot LLM ({llm}, leaderboard)"] = {"weighted_f1": figure}
    return {"language": cfg["data"]["language"]["name"], "systems": systems}


def _pool_choice(main: str, pool_data: str, preset: tuple[str, ...], home: Path, mirror: Path) -> dict[str, Any]:
    """The pool weight chosen on ``main``'s validation split (none or one of POOL_WEIGHTS), scored once on test."""
    from policy_topics import taxonomy
    from policy_topics.data.pooling import pooled_rows, prepare_pool
    from policy_topics.data.prep import prepare_dataset
    from policy_topics.jobs.analysis import final_training_rows

    validation: dict[str, float] = {}
    chosen: tuple[float, dict[str, Any], Any] | None = None
    for weight in (0.0, *POOL_WEIGHTS):
        extra = (f"+data@pool.other={pool_data}", f"+pool.other.weight={weight}") if weight else ()
        cfg = compose(home, mirror, f"data={main}", *preset, *extra)
        with taxonomy.named(cfg["data"].get("extra_topics")):
            prepared = prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"])
            rows = pooled_rows(prepare_pool(cfg["pool"], cfg["prep"], cfg["paths"], prepared))
            scored = fit_and_score(cfg, prepared.splits["train"], prepared.splits["validation"], None, rows)
        validation[f"{weight:g}"] = scored["weighted_f1"]
        if chosen is None or scored["weighted_f1"] > validation[f"{chosen[0]:g}"]:
            chosen = (weight, cfg, rows)
    assert chosen is not None
    weight, cfg, rows = chosen
    tested = {"test": (cfg, rows)}
    if weight:  # the unpooled fit too, as the reference the chosen pool is measured against (not a choice)
        tested["test_without_pool"] = (compose(home, mirror, f"data={main}", *preset), None)
    found: dict[str, Any] = {"main": main, "pool": pool_data, "validation_weighted_f1": validation,
                             "chosen_weight": weight}
    for key, (config, pooled) in tested.items():
        with taxonomy.named(config["data"].get("extra_topics")):
            prepared = prepare_dataset(config["data"], config["prep"], config["paths"])
            found[key] = fit_and_score(config, final_training_rows(config, prepared.splits), prepared.splits["test"],
                                       None, pooled)
    print(f"  pooling {main} + {pool_data}: validation {validation}, chosen {weight:g}, "
          f"test weighted F1 {found['test']['weighted_f1']:.3f}", flush=True)
    return found


def pooling(preset: tuple[str, ...], home: Path, mirror: Path) -> list[dict[str, Any]]:
    """uscongress pooled into the UK acts (this benchmark's preset) and the reverse (uscongress's shipped pure
    TF-IDF preset)."""
    return [_pool_choice("cap_laws_uk", "uscongress", preset, home, mirror),
            _pool_choice("uscongress", "cap_laws_uk", ("experiment=uscongress_tfidf",), home, mirror)]


def _cell(figures: dict[str, float] | None, key: str = "weighted_f1") -> str:
    value = (figures or {}).get(key)
    return "" if value is None or value != value else f"{value:.3f}"


def _reference(study: dict[str, Any]) -> str:
    ref = study.get("test_without_pool")
    return f" (without the pool: {ref['weighted_f1']:.3f}, macro-F1 {ref['macro_f1']:.3f})" if ref else ""


def markdown(results: dict[str, Any]) -> str:
    """The headline table (weighted F1 per country and system), then the detail of the project's rows."""
    countries = results["countries"]
    names = list(dict.fromkeys(name for c in countries.values() for name in c["systems"]))
    lines = [f"| weighted F1, {results['split']} split | " + " | ".join(c.upper() for c in countries) + " | mean |",
             "|---|" + "---:|" * (len(countries) + 1)]
    for name in names:
        cells = [_cell(c["systems"].get(name)) for c in countries.values()]
        values = [float(v) for v in cells if v]
        mean = f"{np.mean(values):.3f}" if len(values) == len(cells) else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} |")
    lines += ["", "| country | system | weighted F1 | accuracy | macro-F1 | weighted F1, unseen test texts (rows) "
              "| fit s | evaluate s | training docs |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for country, entry in countries.items():
        for name, fig in entry["systems"].items():
            if "fit_s" in fig:
                lines.append(f"| {country.upper()} | {name} | {_cell(fig)} | {_cell(fig, 'accuracy')} | "
                             f"{_cell(fig, 'macro_f1')} | {_cell(fig, 'unseen_weighted_f1')} ({fig['unseen_docs']:,}) "
                             f"| {fig['fit_s']:.1f} | {fig['evaluate_s']:.2f} | {fig['train_docs']:,} |")
    for study in results.get("pooling", []):
        val = ", ".join(f"{w}: {v:.3f}" for w, v in study["validation_weighted_f1"].items())
        lines += ["", f"Pooling {study['pool']} into {study['main']}: validation weighted F1 by pool weight ({val}); "
                  f"chosen {study['chosen_weight']:g}, test weighted F1 {study['test']['weighted_f1']:.3f}, "
                  f"macro-F1 {study['test']['macro_f1']:.3f}" + _reference(study) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        mirror = mirror_root(args.mirror)
        countries = [c.strip().lower() for c in args.countries.split(",") if c.strip()]
        unknown = sorted(set(countries) - set(COUNTRIES))
        if unknown:
            raise BenchError(f"unknown countries {unknown}; choose from {', '.join(COUNTRIES)}")
        if not (REPO / "conf" / "experiment" / f"{args.preset}.yaml").is_file():
            raise BenchError(f"no preset conf/experiment/{args.preset}.yaml")
    except BenchError as exc:
        print(f"cap_laws_benchmark: {exc}", file=sys.stderr)
        return 2
    preset = (f"experiment={args.preset}", *args.set)
    results: dict[str, Any] = {"preset": " ".join(preset), "split": args.split,
                               "date": datetime.now(UTC).date().isoformat(),
                               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "countries": {}}
    with tempfile.TemporaryDirectory(prefix="cap-laws-bench-") as home:  # prepared splits: outside the repository
        for country in countries:
            results["countries"][country] = country_rows(country, preset, Path(home), mirror, args.split)
        if args.pooling:
            results["pooling"] = pooling(preset, Path(home), mirror)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("cap_laws.json", json.dumps(results, indent=2) + "\n"), ("cap_laws.md", markdown(results))):
        partial = args.out / f".{name}.tmp"
        partial.write_text(text, encoding="utf-8")
        partial.replace(args.out / name)
    print(markdown(results))
    print(f"wrote {args.out / 'cap_laws.json'} and {args.out / 'cap_laws.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
