"""Save and load fitted pipelines with skops, trusting only types this project decides on.

skops does not run code on load, but it refuses unknown types unless told to trust them. The list of
trusted types is decided here (scikit-learn, NumPy and SciPy classes, and this project's own feature
classes listed in ``TRUSTED_NAMES``), never taken from the model's own
metadata, so a model file that names other types is refused.

A saved pipeline is a folder: ``pipeline.skops`` plus ``vocabularies.json``. skops writes a dict as one
JSON node per entry, which made the TF-IDF vocabularies 40 MB and seconds to save and load; as plain
lists of terms (index = position) they are small, fast, and still data only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from policy_topics.errors import ModelFileError

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.")
# This project's own estimator classes: plain parameters, no callables (checked in _check_structure).
# Each under its module today and under the module that models saved before the stage subpackages name
# (``policy_topics._legacy`` maps those imports to today's modules).
_OWN_CLASSES = ("features.embeddings.SentenceEmbeddings", "features.vectorizers.FastTfidfVectorizer",
                "features.vectorizers.FastHashingVectorizer")
TRUSTED_NAMES = frozenset({"builtins.slice",
                           *(f"policy_topics.{name}" for name in _OWN_CLASSES),
                           *(f"policy_topics.{name.split('.', 1)[1]}" for name in _OWN_CLASSES)})
MODEL_FILE = "pipeline.skops"
VOCABULARY_FILE = "vocabularies.json"
SETTINGS_FILE = "settings.json"  # what prediction needs besides the pipeline: text cleaning, auto-coding threshold


def _vectorizers(pipeline: Pipeline) -> dict[str, TfidfVectorizer]:
    features = pipeline.named_steps["features"]
    if isinstance(features, TfidfVectorizer):
        return {"features": features}
    return {name: step for name, step in features.transformer_list if isinstance(step, TfidfVectorizer)}


@contextmanager
def _vocabularies_detached(pipeline: Pipeline) -> Iterator[dict[str, list[str]]]:
    """Take the vocabularies off the vectorizers (as term lists) for the duration of the block."""
    vectorizers = _vectorizers(pipeline)
    saved = {name: vec.vocabulary_ for name, vec in vectorizers.items()}
    terms = {name: sorted(vocab, key=vocab.__getitem__) for name, vocab in saved.items()}
    try:
        for vec in vectorizers.values():
            del vec.vocabulary_
        yield terms
    finally:
        for name, vec in vectorizers.items():
            vec.vocabulary_ = saved[name]


def digest(folder: Path) -> str:
    """SHA-256 over the saved files, recorded in the tracking store when the model is logged, so files
    changed afterwards in the artifact store are noticed on load."""
    import hashlib

    sha = hashlib.sha256()
    for name in (MODEL_FILE, VOCABULARY_FILE, SETTINGS_FILE):
        if name != SETTINGS_FILE or (folder / name).is_file():  # (models saved before it have none)
            sha.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return sha.hexdigest()


def _check_structure(model: Pipeline, path: Path) -> None:
    """Trusted types can still carry callables (e.g. a vectorizer's ``preprocessor``), which would run on
    every text: this project's pipelines have none."""
    from sklearn.feature_extraction.text import HashingVectorizer

    hashers = {f"{name}.{step_name}": step for name, block in getattr(model.named_steps["features"],
               "transformer_list", []) for step_name, step in getattr(block, "steps", [])
               if isinstance(step, HashingVectorizer)}
    for name, vec in {**_vectorizers(model), **hashers}.items():
        for attribute in ("preprocessor", "tokenizer", "analyzer"):
            value = getattr(vec, attribute, None)
            if value is not None and not isinstance(value, str):
                raise ModelFileError(f"{path}: vectorizer '{name}' has a callable {attribute}; "
                                     "only load models trained by policy-topics")


_ARRAY_API_TORCH = "sklearn.externals.array_api_compat.torch"


class _HideArrayApiTorch:
    """Import hook that makes scikit-learn's array-API shim for torch look absent."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name == _ARRAY_API_TORCH:
            raise ModuleNotFoundError(f"{name} hidden while skops is imported", name=name)
        return None


def _skops_io() -> Any:
    """``skops.io``, imported without importing torch.

    skops lists scikit-learn's types with ``sklearn.utils.all_estimators()``, which imports every
    scikit-learn package on its way, the array-API shim for torch among them, and that imports torch
    whenever it is installed (as with the ``embeddings`` extra): 1.5-2 s more for every save and load,
    and a slower exit. The shim holds no estimator, so hiding it leaves skops' list unchanged (tested)."""
    if "skops.io" not in sys.modules:
        hide = _HideArrayApiTorch()
        sys.meta_path.insert(0, hide)  # type: ignore[arg-type]
        try:
            import skops.io  # noqa: F401
        finally:
            sys.meta_path.remove(hide)  # type: ignore[arg-type]
    return sys.modules["skops.io"]


def save_pipeline(pipeline: Pipeline, folder: Path, settings: dict[str, Any] | None = None) -> None:
    """The pipeline (skops, vocabularies apart as JSON) and its prediction ``settings`` (JSON)."""
    sio = _skops_io()

    folder.mkdir(parents=True, exist_ok=True)
    with _vocabularies_detached(pipeline) as terms:
        sio.dump(pipeline, folder / MODEL_FILE)
    (folder / VOCABULARY_FILE).write_text(json.dumps(terms, ensure_ascii=False))
    if settings:
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))


def load_settings(folder: Path) -> dict[str, Any]:
    """The prediction settings saved with a pipeline ({} for a model saved before there were any)."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not readable ({exc}); retrain the model") from exc
    if not isinstance(settings, dict):
        raise ModelFileError(f"{path} is not a settings object; retrain the model")
    return settings


def load_pipeline(folder: Path) -> Pipeline:
    """Load a pipeline saved by :func:`save_pipeline`, refusing types outside the trusted set."""
    sio = _skops_io()

    path = folder / MODEL_FILE
    try:
        untrusted = sio.get_untrusted_types(file=path)
        terms = json.loads((folder / VOCABULARY_FILE).read_text())
    except Exception as exc:
        raise ModelFileError(f"{folder} is not a readable policy-topics model ({exc}); retrain the model") from exc
    refused = [t for t in untrusted if not (t.startswith(TRUSTED_PREFIXES) or t in TRUSTED_NAMES)]
    if refused:
        raise ModelFileError(
            f"{path} contains types this project does not trust: {', '.join(sorted(refused))}; "
            "only load models trained by policy-topics"
        )
    try:
        model = sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise ModelFileError(f"cannot load {path} ({exc}); the file is damaged: retrain the model") from exc
    if not isinstance(model, Pipeline):
        raise ModelFileError(f"{path} holds a {type(model).__name__}, not a policy-topics pipeline")
    _check_structure(model, path)
    vectorizers = _vectorizers(model)
    if set(vectorizers) != set(terms) or not all(isinstance(t, list) for t in terms.values()):
        raise ModelFileError(f"{folder / VOCABULARY_FILE} does not match {path}; retrain the model")
    for name, vec in vectorizers.items():
        vec.vocabulary_ = {str(term): index for index, term in enumerate(terms[name])}
    return model
