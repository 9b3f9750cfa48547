"""Where runs go: the tracking URI and experiment, checked before any work, and the lock and retries that
let several processes share one SQLite store.

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
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from policy_topics.errors import TrackingError


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
