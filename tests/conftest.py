"""Shared fixtures: a temp project home per test, the data mirror, and a real CLI runner."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from warm import WarmProcess

REPO = Path(__file__).resolve().parents[1]
MIRROR_ENV = "POLICY_TOPICS_DATA_MIRROR"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reads the data mirror (the third-party CAP datasets) is end-to-end: the quick loop
    (`make test-fast`, ``-m "not e2e"``) needs no mirror and no full datasets. Files with end-to-end
    tests run first."""
    for item in items:
        if {"mirror", "laws_mirror"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    # The files with end-to-end tests first: each worker takes whole files, and a long file taken last
    # would leave the other worker idle at the end, where the many short unit-test files now fill it.
    slow = {item.path for item in items if item.get_closest_marker("e2e")}
    items.sort(key=lambda item: item.path not in slow)


def _mirror_dir() -> Path | None:
    env = os.environ.get(MIRROR_ENV)
    if env:
        return Path(env)
    beside = REPO.parent / "shared" / "data" / "cap"
    return beside if beside.is_dir() else None


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The folder with USCongress.csv.gz and NYTimes.csv.gz (CI always has it): the mirror setting, its cap/
    folder, or ../shared/data/cap beside the checkout."""
    path = _mirror_dir()
    if path is not None and not (path / "USCongress.csv.gz").is_file():
        path = path / "cap"  # the setting names the mirror's root, which holds cap/ and cap_laws/
    if path is None or not (path / "USCongress.csv.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"no data mirror: set {MIRROR_ENV} or put shared/ beside the checkout")
        pytest.skip(f"no data mirror ({MIRROR_ENV} unset and no ../shared/data/cap)")
    return path


@pytest.fixture(scope="session")
def laws_mirror() -> Path:
    """A data-mirror root holding cap_laws/<COUNTRY>/ (the CAP law datasets): the mirror setting itself, the
    folder above it (a setting pointing at the cap/ folder), or ../shared/data beside the checkout."""
    env = os.environ.get(MIRROR_ENV)
    for root in ([Path(env), Path(env).parent] if env else []) + [REPO.parent / "shared" / "data"]:
        if (root / "cap_laws" / "UK" / "X_train.csv").is_file():
            return root
    if os.environ.get("CI"):
        pytest.fail(f"no CAP law data: set {MIRROR_ENV} to a folder holding cap_laws/")
    pytest.skip(f"no CAP law data ({MIRROR_ENV} holds no cap_laws/ and no ../shared/data/cap_laws)")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli_env(home: Path, mirror: Path | None = None, **extra: str) -> dict[str, str]:
    # In-process mlflow.set_tracking_uri/set_registry_uri export MLFLOW_* variables: a child must not inherit them.
    env = {k: v for k, v in os.environ.items() if k != MIRROR_ENV and not k.lstrip("_").startswith("MLFLOW_")}
    env["POLICY_TOPICS_HOME"] = str(home)
    if mirror is not None:
        env[MIRROR_ENV] = str(mirror)
    env.update(extra)
    return env


def run_cli(args: list[str], home: Path, mirror: Path | None = None, cwd: Path | None = None,
            timeout: float = 300, **extra: str) -> CliResult:
    """Run ``policy-topics ARGS`` as a user would, in a new interpreter: for what only a new interpreter
    shows (its hash seed, what importing the libraries prints). Otherwise :func:`forked_cli` is the same
    at a fraction of the start-up."""
    proc = subprocess.run(
        [sys.executable, "-m", "policy_topics.cli", *args], capture_output=True, text=True,
        env=cli_env(home, mirror, **extra), cwd=cwd or home, timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def forked_process(args: list[str], home: Path, cwd: Path | None = None, **options: Any) -> WarmProcess:
    """``policy-topics ARGS`` started in a process of its own, forked with the libraries imported
    (:mod:`warm`); ``options`` as :class:`warm.WarmProcess` takes them (``new_session``, ``stdout``...)."""
    return WarmProcess(args, cli_env(home), cwd or home, **options)


def forked_cli(args: list[str], home: Path, timeout: float = 300, **extra: str) -> CliResult:
    """Run ``policy-topics ARGS`` to the end in a process of its own (:func:`forked_process`)."""
    proc = WarmProcess(args, cli_env(home, **extra), home)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()  # only if it outlived the timeout
    return CliResult(proc.returncode, out, err)


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def call_cli(args: list[str], home: Path, mirror: Path | None = None, cwd: Path | None = None,
             **extra: str) -> CliResult:
    """``policy-topics ARGS`` through the same ``main()`` as the console command, in this process: the
    same parsing, checks, messages and exit codes, without the 3-5 s of imports a new process pays. For
    commands whose behaviour does not depend on a fresh process (signals, concurrency and stdin stay
    with :func:`run_cli`). The environment is the one :func:`run_cli` gives a child, restored afterwards,
    and so are MLflow's process-wide tracking and registry URIs and the reporter and logger the CLI installs."""
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    from policy_topics import reporting
    from policy_topics.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    here = os.getcwd()
    uris = tracking_utils._tracking_uri, registry_utils._registry_uri
    logger = logging.getLogger("policy_topics")
    saved = reporting.reporter(), logger.handlers[:], logger.level, logger.propagate
    with _environment(cli_env(home, mirror, **extra)), redirect_stdout(out), redirect_stderr(err):
        _reset_mlflow_uris()  # a new process's MLflow state
        os.chdir(cwd or home)
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.chdir(here)
            tracking_utils._tracking_uri, registry_utils._registry_uri = uris
            reporting.use_reporter(saved[0])
            logger.handlers[:], logger.level, logger.propagate = saved[1], saved[2], saved[3]
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _restore_mlflow_uris() -> Iterator[None]:
    """In-process mlflow.set_tracking_uri/set_registry_uri set process-wide URIs (and export environment
    variables) that the next test (and its MlflowClient without an explicit registry URI) would silently
    pick up: each test starts from MLflow's defaults."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    _reset_mlflow_uris()
    yield
    _reset_mlflow_uris()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _reset_mlflow_uris() -> None:
    """MLflow's process-wide tracking and registry URIs back to unset, as in a new process."""
    import sys

    if "mlflow" not in sys.modules:
        return
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    tracking_utils._tracking_uri = None
    registry_utils._registry_uri = None


@pytest.fixture(scope="session")
def built_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store whose tables MLflow has built (about 100 migrations, 6-8 s on 2 cores), once
    per test process: homes copy it, so only the tests about a first run pay for building a store."""
    from policy_topics.tracking.store import store_client

    database = tmp_path_factory.mktemp("built-store") / "mlflow.db"
    store_client(f"sqlite:///{database}").search_experiments()
    return database


def home_with_store(path: Path, built: Path) -> Path:
    """``path`` made a project home whose MLflow store exists (no experiments or runs yet)."""
    (path / "mlruns").mkdir(parents=True)
    shutil.copyfile(built, path / "mlruns" / "mlflow.db")
    return path


@pytest.fixture
def empty_home(tmp_path: Path) -> Path:
    """An empty project home: no caches, no MLflow store, no outputs. For tests of a first run and of
    input that must leave nothing behind."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def home(tmp_path: Path, built_store: Path) -> Path:
    """A project home for one test, with an MLflow store that has its tables and nothing in them."""
    return home_with_store(tmp_path / "home", built_store)


def load_group(group: str, name: str) -> dict:
    """One file of a config group, interpolations resolved against seed 0, as the model builders take it."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(REPO / "conf" / group / f"{name}.yaml")
    base = OmegaConf.create({"seed": 0})
    merged = OmegaConf.merge(base, {"x": cfg})
    if group == "features" and "defaults" in cfg:
        merged = OmegaConf.merge(base, {"x": OmegaConf.merge(OmegaConf.load(REPO / "conf/features/word.yaml"), cfg)})
        merged.x.pop("defaults")
    return OmegaConf.to_container(merged, resolve=True)["x"]


def compose(*overrides: str) -> dict:
    """``conf/train.yaml`` with overrides, resolved, as the train command composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from policy_topics.paths import config_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def store_client(home: Path):
    """An MLflow client on the SQLite store of a project home (tracking and registry)."""
    import mlflow

    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def files_under(path: Path) -> list[Path]:
    """All files below ``path`` (none if it does not exist)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@dataclass
class TrainedStore:
    """A project home with one model trained on the demo corpus, registered and promoted."""

    home: Path
    run_id: str
    model_uri: str
    registered: str


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory, built_store) -> TrainedStore:
    home = home_with_store(tmp_path_factory.mktemp("demo-store"), built_store)
    result = call_cli(["train", "tracking.register_as=topics-demo"], home)
    assert result.returncode == 0, result.stderr
    promoted = call_cli(["promote", "topics-demo", "1"], home)
    assert promoted.returncode == 0, promoted.stderr
    run_id = result.stdout.split("run id", 1)[1].split()[0]
    model_uri = result.stdout.split("\n  model", 1)[1].split()[0]
    assert len(run_id) == 32 and model_uri.startswith("models:/m-")
    return TrainedStore(home, run_id, model_uri, "models:/topics-demo/1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, body: bytes | None = None, method: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@dataclass
class LiveServer:
    url: str
    port: int
    pid: int


@contextmanager
def running_server(home: Path, *options: str) -> Iterator[LiveServer]:
    """``policy-topics serve`` in a process of its own, yielded once /health answers."""
    port = free_port()
    proc = forked_process(["serve", "--port", str(port), *options], home, new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stderr.read()}")
        try:
            if request(base + "/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("server did not answer /health within 90 s")
    try:
        yield LiveServer(base, port, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in proc.stderr.read()


def wait_for_health(url: str, proc: subprocess.Popen | WarmProcess, log: Path, timeout_s: float) -> None:
    """Bounded wait for a server process to answer ``url``/health; on failure, the end of its log."""
    from policy_topics.errors import TrackingError
    from policy_topics.tracking.server import wait_until_healthy

    try:
        wait_until_healthy(url, proc, timeout_s)
    except TrackingError as exc:
        pytest.fail(f"{exc}:\n{log.read_text()[-3000:]}")


def stop_group(proc: subprocess.Popen | WarmProcess, signum: int = signal.SIGTERM, timeout_s: float = 60) -> int:
    """Stop a server started with ``start_new_session=True``: signal it, wait, then kill what is left of
    its process group (workers it may have left behind); its exit code."""
    if proc.poll() is None:
        proc.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()
