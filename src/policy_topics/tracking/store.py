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

UI_HOST, UI_PORT = "127.0.0.1", 5000  # where the printed `mlflow ui` command serves the UI

# The experiment's kind, for the MLflow versions that open an experiment on the view its kind names.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
# A saved view of the runs table (MLflow 3.17 keeps saved views as experiment tags under this prefix, and
# lists them under "Views"): newest run first, with the quality metrics and the data and model of each run.
RUNS_VIEW_KEY = "policy-topics"
RUNS_VIEW_TAG = f"mlflow.sharedViewState.{RUNS_VIEW_KEY}"
RUNS_VIEW_NAME = "policy-topics: macro-F1 and accuracy"
RUNS_VIEW_COLUMNS = (
    *(f"metrics.`{split}_{metric}`" for split in ("val", "test", "oof", "shared")
      for metric in ("macro_f1", "accuracy")),  # training (held-out, cross-validated) and evaluation runs
    "params.`data.name`", "params.`model.name`", "attributes.`Models`",
)


def runs_view_tag_value(now_ms: int) -> str:
    """The saved view as MLflow 3.17's UI stores one: an envelope (name, times) around the view's state,
    itself a JSON string of the runs page's sort and its columns. Columns of metrics that no run logged
    are not shown, so one view serves training and evaluation runs alike."""
    state = {"orderByKey": "attributes.start_time", "orderByAsc": False,
             "selectedColumns": list(RUNS_VIEW_COLUMNS), "columnOrder": list(RUNS_VIEW_COLUMNS),
             # wide enough for a metric's whole name and four decimals (MLflow's default cuts both)
             "columnWidths": {column: 140 for column in RUNS_VIEW_COLUMNS if column.startswith("metrics.")}}
    return json.dumps({"name": RUNS_VIEW_NAME, "createdAt": now_ms, "updatedAt": now_ms, "state": json.dumps(state)})


@dataclass(frozen=True)
class TrackingTarget:
    """A tracking URI, the experiment to log to, and (for local stores) where artifacts go."""

    uri: str
    experiment: str
    artifact_root: Path | None

    @property
    def is_server(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    def ui_url(self, experiment_id: str) -> str:
        """The address of the experiment's training runs in the MLflow UI, opened on the project's view.

        MLflow 3.17's UI opens an experiment on its GenAI overview whatever the experiment's kind tag says;
        ``workflowType=machine_learning`` opens the "Model training" view instead, and ``viewStateShareKey``
        the saved view :func:`experiment_id` puts on the experiment (:data:`RUNS_VIEW_KEY`), whose table
        shows macro-F1 and accuracy. The path is ``/runs``: MLflow drops the view key on its way there from
        ``#/experiments/ID``. For a server, its address without any credentials in it."""
        if self.is_server:
            parts = urllib.parse.urlsplit(self.uri)
            base = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()
        else:
            base = f"http://{UI_HOST}:{UI_PORT}"
        query = urllib.parse.urlencode({"workflowType": "machine_learning", "viewStateShareKey": RUNS_VIEW_KEY})
        return f"{base.rstrip('/')}/#/experiments/{urllib.parse.quote(experiment_id)}/runs?{query}"

    def ui_command(self, experiment_id: str | None = None, indent: int = 14) -> str:
        """How to look at the runs: for a local store the command that starts the UI; then, given the
        experiment, the address to open (on a line of its own, ``indent`` spaces in, to sit under the
        command where a summary prints it after a 14-character label)."""
        if self.is_server:
            return f"open {self.ui_url(experiment_id) if experiment_id else self.uri} in a browser"
        beside = Path(sys.executable).parent / "mlflow"  # the venv's mlflow, even when it is not on PATH
        program = str(beside) if beside.is_file() else "mlflow"
        # One worker is plenty for one person's browser, and starts faster than MLflow's default of four.
        command = f"{program} ui --backend-store-uri {self.uri} --host {UI_HOST} --port {UI_PORT} --workers 1"
        if experiment_id is None:
            return command
        return f"{command}\n{' ' * indent}then open {self.ui_url(experiment_id)}"


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


def ui_tags() -> dict[str, str]:
    """The experiment tags that make the MLflow UI open on training runs: the experiment's kind and the
    project's saved view of the runs table."""
    return {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, RUNS_VIEW_TAG: runs_view_tag_value(int(time.time() * 1000))}


def _add_ui_tags(experiment: Any) -> None:
    """Give an experiment the UI tags it lacks (one made by another tool, or before this project set
    them). A tag already there stays: the kind may be the user's choice, the view the user's edit. A
    server that lets this user log runs but not tag the experiment leaves it as it is."""
    import mlflow
    from mlflow.exceptions import MlflowException

    for key, value in ui_tags().items():
        if key in experiment.tags:
            continue
        try:
            mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, key, value)
        except MlflowException as exc:
            if exc.error_code not in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
                raise


def experiment_id(target: TrackingTarget) -> str:
    """The id of the target's experiment, created (with its artifact root and :func:`ui_tags`) on first
    use; an existing experiment gets the UI tags it lacks."""
    import mlflow

    mlflow.set_tracking_uri(target.uri)
    mlflow.set_registry_uri(target.uri)  # the registry lives in the same store (a new process's default)

    def get_or_create() -> str:
        with _store_lock(target.uri):
            experiment = mlflow.get_experiment_by_name(target.experiment)
            if experiment is not None:
                _add_ui_tags(experiment)
                return str(experiment.experiment_id)
            location = target.artifact_root.as_uri() if target.artifact_root else None
            return str(mlflow.create_experiment(target.experiment, artifact_location=location, tags=ui_tags()))

    try:
        return retry_while_locked(get_or_create)
    except Exception as exc:
        raise TrackingError(f"cannot use the MLflow store {target.uri}: {exc}") from exc


def skip_module_scan() -> None:
    """Before logging or loading a model, MLflow checks its pip requirements against this environment, and
    first maps every module of every installed distribution (``packages_distributions``: 1.5 s with 200
    packages on a loaded 2-core VM, for each training and each model load). The project's requirements name
    distributions, which the check finds by name, so the map starts empty: the check still runs and still
    warns on a mismatch (0.01 s). MLflow keeps that map in a private module variable; if a later MLflow
    renames it, this does nothing and the check takes its usual time."""
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", ()) is None:
        requirements_utils._MODULES_TO_PACKAGES = {}
