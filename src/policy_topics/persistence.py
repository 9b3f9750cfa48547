"""Save and load fitted pipelines with skops, trusting only types this project decides on.

skops does not run code on load, but it refuses unknown types unless told to trust them. The list of
trusted types is decided here (scikit-learn, NumPy and SciPy classes), never taken from the model's own
metadata, so a model file that names other types is refused.
"""

from __future__ import annotations

from pathlib import Path

from sklearn.pipeline import Pipeline

from policy_topics.errors import PolicyTopicsError

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.")
TRUSTED_NAMES = frozenset({"builtins.slice"})


class ModelFileError(PolicyTopicsError):
    """A model file that is not this project's own, or was tampered with."""


def save_pipeline(pipeline: Pipeline, path: Path) -> None:
    import skops.io as sio

    sio.dump(pipeline, path)


def load_pipeline(path: Path) -> Pipeline:
    """Load a pipeline saved by :func:`save_pipeline`, refusing types outside the trusted set."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable skops model file ({exc}); retrain the model") from exc
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
    return model
