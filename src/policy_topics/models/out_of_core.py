"""Training on corpora larger than memory: hashing features + SGD, fed batch by batch.

``experiment=out_of_core`` (``features=hashing``, ``model=sgd_stream``) trains without ever holding the
corpus, its feature matrix or a vocabulary in memory:

1. **One hashing pass per split.** Record batches are read from the split's Parquet file (pyarrow, or a
   ``datasets`` dataset), hashed into raw n-gram counts (:class:`~sklearn.feature_extraction.text.
   HashingVectorizer`, ``alternate_sign=False``) by ``stream.workers`` processes (the trainer and
   ``workers - 1`` helpers, which exit when the pass ends), and written to a temp
   folder as one sparse matrix per batch. The same pass counts document frequencies (for the idf) and
   documents per topic (for ``class_weight: balanced``, which ``partial_fit`` does not do itself).
2. **Epochs over the cached counts.** Each epoch visits the cached batches in a seeded random order,
   shuffles the rows of each, applies tf-idf (sublinear tf, idf from step 1, l2 norm per block) and calls
   :meth:`SGDClassifier.partial_fit` with the fixed list of topics. Hashing (the Python-bound part)
   happens once, not once per epoch.
3. **Scoring batch by batch** from the cache: the same metrics and artifacts as the in-memory path.

The result is an ordinary scikit-learn :class:`~sklearn.pipeline.Pipeline` (``features``:
hashing + :class:`TfidfTransformer` per block, ``classifier``: the SGD model), so evaluation, skops
persistence, the pyfunc model, the server and ``predict`` treat it like any other. Memory is bounded by
the batch size, the weight matrix (topics x hashed columns) and the in-flight batches of the workers.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.pipeline import Pipeline

from policy_topics.data.batches import Source, iter_batches
from policy_topics.errors import ConfigError, DataFormatError
from policy_topics.features.hashing import build_hashing_features, hashing_blocks, is_hashing, raw_counts, tfidf

_PROBABILISTIC_LOSSES = ("log_loss", "modified_huber")


# --- configuration -------------------------------------------------------------------------------


def is_streaming(model: Mapping[str, Any]) -> bool:
    return bool(model.get("stream"))


@dataclass(frozen=True)
class StreamSettings:
    """``model.stream``, checked: every problem is one line naming the key and the fix."""

    batch_size: int = 5_000
    epochs: int = 10
    doc_budget: int = 300_000
    shuffle: bool = True
    workers: int = 2
    cache_dir: str | None = None
    seed: int = 0

    def epochs_for(self, n_docs: int) -> int:
        """``epochs``, cut so that at most ``doc_budget`` documents are fed in all (at least one epoch):
        a big corpus gives SGD enough updates in fewer passes, and each pass costs documents x topics."""
        if not self.doc_budget:
            return self.epochs
        return max(1, min(self.epochs, self.doc_budget // max(1, n_docs)))

    @classmethod
    def from_config(cls, stream: Mapping[str, Any], seed: int = 0) -> StreamSettings:
        def integer(key: str, low: int) -> int:
            value = stream.get(key, getattr(cls, key))
            try:
                number = int(value)
                if number != float(value):
                    raise ValueError
            except (TypeError, ValueError):
                raise ConfigError(f"model.stream.{key} must be an integer, not {value!r}") from None
            if number < low:
                raise ConfigError(f"model.stream.{key}={number} must be at least {low}, "
                                  f"e.g. model.stream.{key}={getattr(cls, key)}")
            return number

        cache = stream.get("cache_dir")
        return cls(batch_size=integer("batch_size", 1), epochs=integer("epochs", 1),
                   doc_budget=integer("doc_budget", 0),
                   shuffle=bool(stream.get("shuffle", True)), workers=integer("workers", 1),
                   cache_dir=str(cache) if cache else None, seed=int(seed))


def check_config(features: Mapping[str, Any], model: Mapping[str, Any], evaluation: Mapping[str, Any]) -> None:
    """Refuse combinations the streamed fit cannot do, before any run opens."""
    if not is_streaming(model):
        return
    StreamSettings.from_config(model["stream"])
    if not is_hashing(features):
        raise ConfigError(f"model={model.get('name')} streams batches and needs features without a vocabulary; "
                          "set features=hashing (or use experiment=out_of_core)")
    spec = model["estimator"]
    if not str(spec.get("_target_", "")).endswith("SGDClassifier"):
        raise ConfigError(f"model={model.get('name')}: streamed training needs sklearn.linear_model.SGDClassifier "
                          f"(it has partial_fit), not {spec.get('_target_')}")
    loss = spec.get("loss", "hinge")
    if loss not in _PROBABILISTIC_LOSSES or model.get("calibration", {}).get("always"):
        raise ConfigError(f"model.estimator.loss={loss}: streamed training cannot calibrate (calibration needs "
                          f"the data in memory); use loss {' or '.join(_PROBABILISTIC_LOSSES)}, which give "
                          "probabilities, and model.calibration.always=false")


# --- the hashing pass ----------------------------------------------------------------------------


def _hash_batch(blocks: Any, texts: list[str], out: str) -> np.ndarray:
    """Hash one batch to raw counts, save them to ``out``; return the batch's document frequencies."""
    counts = raw_counts(blocks, texts)
    sparse.save_npz(out, counts, compressed=False)
    return np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.int64)


@dataclass
class HashedSplit:
    """Raw hashed counts of one split, cached on disk batch by batch, with what the pass counted."""

    name: str
    files: list[Path] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    texts: list[str] | None = None  # kept only for splits that are scored (error tables need them)
    doc_freq: np.ndarray | None = None
    seconds: float = 0.0

    @property
    def n_docs(self) -> int:
        return int(sum(len(y) for y in self.labels))

    def all_labels(self) -> np.ndarray:
        return np.concatenate(self.labels) if self.labels else np.zeros(0, dtype=np.int64)


@contextmanager
def hashing_processes(settings: StreamSettings) -> Iterator[Any]:
    """Helper processes for the hashing pass: ``workers - 1`` of them, since the trainer hashes batches
    too (None for ``workers: 1``). Each helper is a Python process with scikit-learn loaded, so the trainer
    working as one of the ``workers`` saves a process; a helper starts without pandas and pyarrow, which
    scikit-learn would import but hashing never uses (:mod:`policy_topics.features.lean_process`: about
    130 MiB before any batch instead of 210). A pool of its own, shut down on exit: joblib's process-wide
    reusable pool (used by scikit-learn's ``n_jobs``) must not be shared, and the helpers must be gone
    before the epochs start."""
    if settings.workers <= 1:
        yield None
        return
    from joblib.externals.loky import ProcessPoolExecutor

    from policy_topics.features.lean_process import without_data_frames

    executor = ProcessPoolExecutor(max_workers=settings.workers - 1, initializer=without_data_frames)
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, kill_workers=True)


def hash_split(name: str, source: Source, blocks: Any, settings: StreamSettings, folder: Path,
               keep_texts: bool = False, executor: Any = None) -> HashedSplit:
    """Hash ``source`` batch by batch into ``folder``. With ``executor`` (``workers - 1`` helper processes),
    batches go to the helpers while each has fewer than two in flight and are hashed here otherwise, so
    the trainer is one of the ``workers`` and memory stays bounded however long the source is."""
    start = time.perf_counter()
    result = HashedSplit(name, texts=[] if keep_texts else None)
    width = sum(hasher.n_features for _, hasher, _ in blocks)
    result.doc_freq = np.zeros(width, dtype=np.int64)
    pending: list[Future] = []
    queue = 2 * (settings.workers - 1)

    def collect(doc_freq: np.ndarray) -> None:
        result.doc_freq += doc_freq

    try:
        for number, (texts, labels) in enumerate(iter_batches(source, settings.batch_size)):
            out = folder / f"{name}-{number:06d}.npz"
            result.files.append(out)
            result.labels.append(labels)
            if result.texts is not None:
                result.texts.extend(texts)
            for future in [f for f in pending if f.done()]:
                pending.remove(future)
                collect(future.result())
            if executor is not None and len(pending) < queue:
                pending.append(executor.submit(_hash_batch, blocks, texts, str(out)))
            else:
                collect(_hash_batch(blocks, texts, str(out)))
            del texts
        while pending:
            collect(pending.pop(0).result())
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    result.seconds = time.perf_counter() - start
    return result


# --- fitting and scoring -------------------------------------------------------------------------


def _idf(doc_freq: np.ndarray, n_docs: int) -> np.ndarray:
    """scikit-learn's smoothed idf: ln((1 + n) / (1 + df)) + 1."""
    return (np.log((1.0 + n_docs) / (1.0 + doc_freq)) + 1.0).astype(np.float64)


def _set_idf(blocks: Any, doc_freq: np.ndarray, n_docs: int) -> None:
    offset = 0
    for _, hasher, transformer in blocks:
        width = hasher.n_features
        if transformer.use_idf:
            transformer.idf_ = _idf(doc_freq[offset:offset + width], n_docs)
        offset += width


def _class_weight(spec: Any, labels: np.ndarray, classes: np.ndarray) -> Any:
    """``balanced`` as explicit weights (partial_fit refuses the string): n / (k * count)."""
    if spec != "balanced":
        return spec
    counts = np.array([np.count_nonzero(labels == c) for c in classes], dtype=np.float64)
    return {int(c): float(len(labels) / (len(classes) * n)) for c, n in zip(classes, counts, strict=True)}


def fit_hashed(features: Mapping[str, Any], model: Mapping[str, Any], parts: Sequence[HashedSplit],
               settings: StreamSettings, classes: np.ndarray | None = None) -> Pipeline:
    """Fit the streamed pipeline on the cached batches of ``parts`` (e.g. train, or train + validation)."""
    from policy_topics.models.pipeline import build_estimator

    pipeline = Pipeline([("features", build_hashing_features(features)), ("classifier", build_estimator(model))])
    blocks = hashing_blocks(pipeline.named_steps["features"])
    labels = np.concatenate([p.all_labels() for p in parts])
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    n_docs = len(labels)
    if n_docs == 0:
        raise DataFormatError("no documents to train on; the training data is empty")
    doc_freq = np.sum([p.doc_freq for p in parts], axis=0)
    pipeline.named_steps["features"].fit([""])  # marks the union and its blocks fitted (hashing is stateless)
    _set_idf(blocks, doc_freq, n_docs)          # then the idf of the whole stream replaces that of one text
    classifier = pipeline.named_steps["classifier"]
    classifier.set_params(class_weight=_class_weight(classifier.get_params().get("class_weight"), labels, classes))
    rng = np.random.default_rng(settings.seed)
    batches = [(f, y) for p in parts for f, y in zip(p.files, p.labels, strict=True)]
    for _ in range(settings.epochs_for(n_docs)):
        order = rng.permutation(len(batches)) if settings.shuffle else np.arange(len(batches))
        for index in order:
            path, y = batches[index]
            x = tfidf(blocks, sparse.load_npz(path).tocsr())
            if settings.shuffle:
                rows = rng.permutation(len(y))
                x, y = x[rows], y[rows]
            with warnings.catch_warnings():  # SGD's one-vs-rest threads trip a scikit-learn config warning
                warnings.filterwarnings("ignore", message=".*sklearn.utils.parallel.delayed.*")
                classifier.partial_fit(x, y, classes=classes)
    return pipeline


def score_hashed(pipeline: Pipeline, part: HashedSplit) -> np.ndarray:
    """Class probabilities of a hashed split, batch by batch."""
    blocks = hashing_blocks(pipeline.named_steps["features"])
    classifier = pipeline.named_steps["classifier"]
    proba = [classifier.predict_proba(tfidf(blocks, sparse.load_npz(path).tocsr())) for path in part.files]
    return np.vstack(proba) if proba else np.zeros((0, len(classifier.classes_)))


@dataclass
class StreamedFit:
    """What :func:`fit_stream` returns: the pipeline and where the time went."""

    pipeline: Pipeline
    n_docs: int
    seconds: dict[str, float]


def blocks_for(features: Mapping[str, Any]) -> Any:
    return hashing_blocks(build_hashing_features(features))


@dataclass
class Workspace:
    """A temp folder for the cached hashed batches, removed on exit."""

    settings: StreamSettings
    folder: Path | None = None

    def __enter__(self) -> Path:
        base = self.settings.cache_dir
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="policy-topics-stream-", dir=base))
        return self.folder

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def fit_stream(features: Mapping[str, Any], model: Mapping[str, Any], sources: Sequence[Source],
               seed: int = 0, classes: Sequence[int] | None = None) -> StreamedFit:
    """Fit the streamed pipeline on one or more Parquet files / ``datasets`` datasets (columns ``text``
    and ``label``), never holding more than a few batches in memory. ``classes`` fixes the topic list
    (default: the labels found by the hashing pass)."""
    settings = StreamSettings.from_config(model.get("stream") or {}, seed)
    check_config(features, {**model, "stream": model.get("stream") or {"batch_size": settings.batch_size}}, {})
    blocks = blocks_for(features)
    with Workspace(settings) as folder:
        start = time.perf_counter()
        with hashing_processes(settings) as executor:  # the helpers exit before the epochs
            parts = [hash_split(f"part{i}", source, blocks, settings, folder, executor=executor)
                     for i, source in enumerate(sources)]
        hashed = time.perf_counter() - start
        pipeline = fit_hashed(features, model, parts, settings, None if classes is None else np.asarray(classes))
        return StreamedFit(pipeline, sum(p.n_docs for p in parts),
                           {"hash": hashed, "epochs": time.perf_counter() - start - hashed})
