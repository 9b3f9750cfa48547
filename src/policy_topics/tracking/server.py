"""A team's shared MLflow tracking server: runs and the model registry in PostgreSQL, artifacts in a
folder (or bucket) that the server proxies, so that clients need nothing but its URL.

``policy-topics tracking-server`` runs ``mlflow server`` in the foreground with that set-up. Given
``--backend-store-uri`` it uses an existing PostgreSQL database; otherwise it keeps a PostgreSQL cluster
of its own in ``DIR/postgres`` (Debian's ``postgresql`` package), listening on 127.0.0.1 only, with a
generated password in ``DIR/postgres/password``. Ctrl-C or SIGTERM stops the MLflow server and the
cluster it started. PostgreSQL refuses to run as root, so as root its programs run as user ``postgres``.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy_topics.errors import TrackingError
from policy_topics.reporting import reporter

PG_USER = "mlflow"
PG_DATABASE = "mlflow"
_POSTGRES_ACCOUNT = "postgres"


def postgres_bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: Debian keeps them off PATH, in /usr/lib/postgresql/N/bin."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and (Path(folder) / "pg_ctl").is_file():
            return (Path(folder) / "pg_ctl").resolve().parent
    raise TrackingError("PostgreSQL's server programs (initdb, pg_ctl) were not found; install them "
                        "(Debian: apt-get install postgresql, or `make system-deps`), or pass --backend-store-uri")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """Run a PostgreSQL program (as user postgres when we are root); its last message on failure."""
    if _as_root():
        cmd = ["runuser", "-u", _POSTGRES_ACCOUNT, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise TrackingError(f"{what} failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
    return proc.stdout


@dataclass(frozen=True)
class LocalPostgres:
    """A PostgreSQL cluster in ``folder``, on 127.0.0.1:``port``, holding the database ``mlflow``."""

    folder: Path
    port: int
    bindir: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def password_file(self) -> Path:
        return self.folder / "password"

    @property
    def uri(self) -> str:
        """The backend store URI; the password travels in ``env()`` (PGPASSWORD), not on command lines."""
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password_file.read_text().strip()}

    def running_port(self) -> int | None:
        """The port of this cluster if it already runs (e.g. left by an earlier start), else None."""
        try:
            _run([str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)], "pg_ctl status")
        except TrackingError:
            return None
        return int((self.data / "postmaster.pid").read_text().splitlines()[3])

    def init(self) -> None:
        """Create the cluster with a generated password, unless it exists."""
        if (self.data / "PG_VERSION").is_file():
            return
        new_folders = [f for f in (self.folder, *self.folder.parents) if not f.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = None
        if _as_root():
            import pwd

            owner = pwd.getpwnam(_POSTGRES_ACCOUNT)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            if subprocess.run(["runuser", "-u", _POSTGRES_ACCOUNT, "--", "test", "-w", str(self.folder)]).returncode:
                for made in new_folders:
                    made.rmdir()
                raise TrackingError(
                    f"user {_POSTGRES_ACCOUNT} cannot reach {self.folder} (PostgreSQL refuses to run as root, so it "
                    "runs as that user); pass --dir with a folder whose parents others may enter, e.g. under /srv")
        with os.fdopen(os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(24) + "\n")
        if owner is not None:
            os.chown(self.password_file, owner.pw_uid, owner.pw_gid)
        _run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER, f"--pwfile={self.password_file}",
              "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-instructions"], "initdb")

    def start(self) -> None:
        if port_in_use("127.0.0.1", self.port):
            raise TrackingError(f"port {self.port} on 127.0.0.1 is in use; pass --postgres-port with a free port, "
                                "or --backend-store-uri to use the PostgreSQL that runs there")
        options = f"-h 127.0.0.1 -p {self.port} -k {shlex.quote(str(self.folder))}"
        _run([str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
              "-l", str(self.folder / "postgres.log"), "-o", options], f"starting PostgreSQL (log: {self.folder})")

    def create_database(self) -> None:
        try:
            _run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER,
                  PG_DATABASE], "createdb", self.env())
        except TrackingError as exc:
            if "already exists" not in str(exc):
                raise

    def stop(self) -> None:
        """Stop the cluster if it runs (someone may have stopped it already)."""
        if self.running_port() is None:
            return
        _run([str(self.bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)], "stopping PostgreSQL")


def mlflow_server_command(backend_store_uri: str, artifacts: str, host: str, port: int, workers: int,
                          extra: list[str]) -> list[str]:
    """``mlflow server`` with proxied artifacts: clients upload and download through the server."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
            "--serve-artifacts", "--artifacts-destination", artifacts, "--host", host, "--port", str(port),
            "--workers", str(workers), *extra]


def wait_until_healthy(url: str, proc: subprocess.Popen[Any], timeout_s: float) -> float:
    """Poll ``url``/health until it answers 200; seconds waited. Fails if the process exits first."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if proc.poll() is not None:
            raise TrackingError(f"mlflow server exited with code {proc.returncode} before answering; "
                                "see its messages above")
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.25)
    raise TrackingError(f"mlflow server did not answer {url}/health within {timeout_s:.0f} s")


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 30) -> None:
    """SIGTERM (mlflow server passes it on to its workers), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def run(folder: Path, backend_store_uri: str | None, artifacts: str | None, host: str, port: int, workers: int,
        postgres_port: int, extra: list[str], start_timeout_s: float = 180) -> None:
    """Start PostgreSQL (unless given a database) and ``mlflow server``; serve until interrupted."""
    folder = folder.expanduser().resolve()
    artifacts = artifacts or str(folder / "artifacts")
    if "://" not in artifacts:
        artifacts = str(Path(artifacts).expanduser().resolve())
    if port_in_use(host, port):
        raise TrackingError(f"port {port} on {host} is in use; pass --port with a free port")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    postgres: LocalPostgres | None = None
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION",
                                                                              "false")}
    proc: subprocess.Popen[Any] | None = None
    try:
        if backend_store_uri is None:
            candidate = LocalPostgres(folder / "postgres", postgres_port, postgres_bindir())
            candidate.init()
            running = candidate.running_port()
            if running is None:
                candidate.start()
                postgres = candidate  # started here, so stopped here
            else:
                candidate = LocalPostgres(candidate.folder, running, candidate.bindir)
            candidate.create_database()
            backend_store_uri = candidate.uri
            env.update(candidate.env())
            reporter().line(f"PostgreSQL: {candidate.uri} (cluster {candidate.data}, "
                            f"password in {candidate.password_file})")
        if "://" not in artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
        cmd = mlflow_server_command(backend_store_uri, artifacts, host, port, workers, extra)
        reporter().line(f"starting: {shlex.join(cmd)}")
        proc = subprocess.Popen(cmd, env=env)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        waited = wait_until_healthy(url, proc, start_timeout_s)
        reporter().line(f"tracking server ready in {waited:.1f} s at {url} (artifacts: {artifacts})\n"
              f"train against it: MLFLOW_TRACKING_URI={url} policy-topics train ...")
        code = proc.wait()
        if code:
            raise TrackingError(f"mlflow server exited with code {code}; see its messages above")
    except KeyboardInterrupt:
        pass
    finally:
        if proc is not None:
            stop_process(proc)
        if postgres is not None:
            postgres.stop()
