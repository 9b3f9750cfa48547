"""MLflow: where runs go, and what each training run records.

The default store is a SQLite file at a fixed place (``tracking.store_dir``), with artifacts beside it,
independent of the directory the command runs in. A server URI (config or ``MLFLOW_TRACKING_URI``) is
checked before any work is done, so a down server fails fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics import __version__
from policy_topics.errors import TrackingError
from policy_topics.paths import PACKAGE_DIR, resources_dir

MODEL_NAME = "model"


@dataclass(frozen=True)
class TrackingTarget:
    """A tracking URI, the experiment to log to, and (for local stores) where artifacts go."""

    uri: str
    experiment: str
    artifact_root: Path | None

    @property
    def is_server(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    def ui_command(self) -> str:
        if self.is_server:
            return f"open {self.uri} in a browser"
        beside = Path(sys.executable).parent / "mlflow"  # the venv's mlflow, even when it is not on PATH
        program = str(beside) if beside.is_file() else "mlflow"
        return f"{program} ui --backend-store-uri {self.uri} --host 127.0.0.1 --port 5000"


def tracking_target(tracking: Mapping[str, Any]) -> TrackingTarget:
    """Resolve ``conf/tracking``: a configured URI, else the project's SQLite store."""
    uri = tracking.get("uri")
    experiment = str(tracking["experiment"])
    if uri:
        return TrackingTarget(str(uri), experiment, None)
    store = Path(tracking["store_dir"]).expanduser().resolve()
    return TrackingTarget(f"sqlite:///{store / 'mlflow.db'}", experiment, store / "artifacts")


def check_reachable(target: TrackingTarget, timeout_s: float = 5.0) -> None:
    """Fail fast, before any work, when a tracking server does not answer."""
    if not target.is_server:
        return
    url = target.uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            if resp.status != 200:
                raise TrackingError(f"tracking server {target.uri} answered {resp.status} on /health")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"tracking server {target.uri} is not reachable ({reason}); start it, or unset "
            "MLFLOW_TRACKING_URI / tracking.uri to use the local SQLite store"
        ) from exc


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(resources_dir()), *args], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state() -> dict[str, str]:
    """Commit and dirtiness of the checkout the code runs from (empty when not a git checkout)."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"mlflow.source.git.commit": commit, "git_dirty": str(bool(status)).lower()}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"C": 1}}`` -> ``{"model.C": "1"}`` for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return flat


def experiment_id(target: TrackingTarget) -> str:
    """The id of the target's experiment, created (with its artifact root) on first use."""
    import mlflow

    mlflow.set_tracking_uri(target.uri)
    try:
        experiment = mlflow.get_experiment_by_name(target.experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = target.artifact_root.as_uri() if target.artifact_root else None
        return str(mlflow.create_experiment(target.experiment, artifact_location=location))
    except Exception as exc:
        raise TrackingError(f"cannot use the MLflow store {target.uri}: {exc}") from exc


@contextmanager
def start_run(target: TrackingTarget, run_name: str | None) -> Iterator[Any]:
    """Open an MLflow run in the target's experiment; the run is marked FAILED if the block raises."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id(target), run_name=run_name) as run:
        yield run


def log_setup(config: Mapping[str, Any], config_yaml: str, splits: Mapping[str, pd.DataFrame], name: str,
              fingerprint: str, source: str, source_sha256: str, cleaning: Mapping[str, Any]) -> None:
    """Record what the run is made of: params, config file, dataset inputs, git state."""
    import mlflow

    mlflow.log_params(flatten({k: v for k, v in config.items() if k not in ("paths", "hydra")}))
    mlflow.log_params({"data.fingerprint": fingerprint, "data.source_sha256": source_sha256 or "n/a"})
    mlflow.set_tags({**git_state(), "policy_topics.version": __version__, "dataset": name})
    mlflow.log_text(config_yaml, "config.yaml")
    mlflow.log_dict(dict(cleaning), "data/cleaning.json")
    for split, frame in splits.items():
        if len(frame):
            dataset = mlflow.data.from_pandas(frame, source=source, name=f"{name}-{split}",
                                              digest=fingerprint, targets="label")
            mlflow.log_input(dataset, context=split)


def log_model(pipeline: Any, example_texts: list[str], registered_name: str | None) -> tuple[str, str | None]:
    """Log the pyfunc topic model (skops pipeline + code) with signature and input example, and
    register it under ``registered_name`` when given. Returns the model URI and the registered version."""
    import mlflow
    import sklearn
    import skops
    from mlflow.models import infer_signature

    from policy_topics.persistence import save_pipeline
    from policy_topics.prediction import TopicPredictor
    from policy_topics.topic_model import PARAMS, PIPELINE_ARTIFACT, records_frame

    example = pd.DataFrame({"text": example_texts})
    output = records_frame(TopicPredictor(pipeline).predict_records(example_texts, explain=3))
    signature = infer_signature(example, output, params=PARAMS)
    requirements = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}",
                    f"skops=={skops.__version__}", f"pandas=={pd.__version__}"]
    with tempfile.TemporaryDirectory(prefix="policy-topics-model-") as tmp:
        path = Path(tmp) / PIPELINE_ARTIFACT
        save_pipeline(pipeline, path)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME, python_model=str(PACKAGE_DIR / "mlflow_model.py"),
            artifacts={PIPELINE_ARTIFACT: str(path)}, signature=signature, input_example=example,
            pip_requirements=requirements,
        )
    mlflow.set_tag("model_uri", info.model_uri)
    version = None
    if registered_name:
        version = mlflow.register_model(info.model_uri, registered_name).version
        mlflow.set_tag("registered_model", f"models:/{registered_name}/{version}")
    return info.model_uri, None if version is None else str(version)
