"""Helpers of the serving tests: a model server (or `mlflow models serve`) started as a real process with
the options and environment a test gives, and raw HTTP calls with headers. A module of its own rather than
a second conftest.py, whose module name would shadow the suite's."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from conftest import cli_env, free_port, stop_group
from warm import WarmProcess


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header's values joined with ", "
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


def call(url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         method: str | None = None) -> Answer:
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return Answer(resp.status, _headers(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, _headers(err.headers), err.read())


def _headers(message: Message) -> dict[str, str]:
    return {name.lower(): ", ".join(message.get_all(name) or []) for name in set(message.keys())}


@dataclass
class Served:
    url: str
    pid: int
    log: Path  # the process's standard error


def _wait(url: str, proc: subprocess.Popen | WarmProcess, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-3000:]}")
        try:
            if call(url + "/health").status == 200:
                return
        except OSError:
            time.sleep(0.3)
    stop_group(proc)
    pytest.fail(f"server did not answer /health within {timeout_s:.0f} s: {log.read_text()[-3000:]}")


@contextmanager
def serving(home: Path, folder: Path, *options: str, **env: str) -> Iterator[Served]:
    """``policy-topics serve`` with ``options`` and extra environment ``env``, until /health answers."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    with log.open("w") as err:
        proc = WarmProcess(["serve", "--port", str(port), *options], cli_env(home, **env), home,
                           new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc, log)
        yield Served(url, proc.pid, log)
    finally:
        stop_group(proc)
    assert "Traceback" not in log.read_text()


@contextmanager
def mlflow_serving(home: Path, folder: Path, model_uri: str) -> Iterator[Served]:
    """``mlflow models serve`` of the same registered model, on the project's store."""
    port = free_port()
    log = folder / f"mlflow-{port}.log"
    bin_dir = Path(sys.executable).parent
    env = cli_env(home, MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
                  PATH=f"{bin_dir}:{cli_env(home).get('PATH', '')}")  # it runs `uvicorn` from PATH
    with log.open("w") as err:
        proc = subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
                                 "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=err, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc, log)
        yield Served(url, proc.pid, log)
    finally:
        stop_group(proc)
