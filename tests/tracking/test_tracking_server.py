"""A team's tracking server as README sets it up: `policy-topics tracking-server` starts a real PostgreSQL
(Debian's package) and `mlflow server` on loopback; training logs to it over HTTP and the run reads back."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import call_cli, files_under, forked_cli, forked_process, free_port, stop_group, wait_for_health
from warm import WarmProcess

from policy_topics.tracking.server import PG_DATABASE, PG_USER, LocalPostgres, port_in_use, postgres_bindir

pytestmark = pytest.mark.e2e


@dataclass
class TeamServer:
    url: str
    folder: Path
    postgres: LocalPostgres
    proc: WarmProcess
    log: Path

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; the command stops MLflow and its PostgreSQL."""
        return stop_group(self.proc, signal.SIGINT)

    def run_count(self) -> int:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.postgres.port, user=PG_USER, dbname=PG_DATABASE,
                               password=self.postgres.env()["PGPASSWORD"])
        try:
            with con.cursor() as cur:
                cur.execute("select count(*) from runs")
                return cur.fetchone()[0]
        finally:
            con.close()


@pytest.fixture(scope="module")
def team_server(tmp_path_factory) -> Iterator[TeamServer]:
    # PostgreSQL runs as user postgres when the tests run as root: its folder must be reachable by that
    # user, which pytest's private temp folder is not.
    folder = Path(tempfile.mkdtemp(prefix="policy-topics-team-"))
    folder.chmod(0o755)
    port, pg_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("team-server") / "server.log"
    with log.open("w") as out:
        proc = forked_process(["tracking-server", "--dir", str(folder), "--port", str(port), "--postgres-port",
                               str(pg_port), "--workers", "1"], folder, new_session=True, stdout=out,
                              stderr=subprocess.STDOUT)
    server = TeamServer(f"http://127.0.0.1:{port}", folder, LocalPostgres(folder / "postgres", pg_port,
                                                                          postgres_bindir()), proc, log)
    try:
        wait_for_health(server.url, proc, log, timeout_s=180)
        deadline = time.monotonic() + 30  # the command reports ready just after its first /health answer
        while "tracking server ready" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
        server.postgres.stop()  # in case the command died without stopping it
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def team_run(team_server: TeamServer, tmp_path_factory):
    """One `policy-topics train` on the demo corpus, logged to the team server."""
    import mlflow

    home = tmp_path_factory.mktemp("team-client")
    result = call_cli(["train", "tracking.register_as=topics-team"], home, MLFLOW_TRACKING_URI=team_server.url)
    assert result.returncode == 0, result.stderr
    assert f"-> {team_server.url} (experiment 'demo')" in result.stdout
    client = mlflow.MlflowClient(tracking_uri=team_server.url, registry_uri=team_server.url)
    runs = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert len(runs) == 1
    return home, client, runs[0]


def test_the_command_serves_mlflow_on_postgresql_with_proxied_artifacts(team_server):
    log = team_server.log.read_text()
    assert f"PostgreSQL: postgresql+psycopg2://{PG_USER}@127.0.0.1:{team_server.postgres.port}/{PG_DATABASE}" in log
    assert f"--artifacts-destination {team_server.folder / 'artifacts'}" in log
    assert "tracking server ready in" in log and f"MLFLOW_TRACKING_URI={team_server.url} policy-topics train" in log
    assert team_server.postgres.env()["PGPASSWORD"] not in log  # the password stays in its file
    assert oct((team_server.postgres.password_file).stat().st_mode & 0o777) == "0o600"


def test_training_logs_params_metrics_and_artifacts_to_the_server(team_server, team_run):
    home, client, run = team_run
    assert run.info.status == "FINISHED"
    assert run.data.params["data.name"] == "demo" and run.data.params["model.name"] == "linearsvc"
    assert 0.5 < run.data.metrics["test_macro_f1"] <= 1
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # uploaded through the server
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "report.md", "confusion_test.png", "top_ngrams.csv"} <= names
    on_disk = {p.name for p in files_under(team_server.folder / "artifacts")}
    assert {"report.md", "confusion_test.png"} <= on_disk
    assert team_server.run_count() == 1  # the run is a row in PostgreSQL
    assert not (home / "mlruns").exists()  # and nothing went to the local store


def test_the_registered_model_predicts_from_the_server(team_server, team_run, tmp_path):
    import json

    _, client, run = team_run
    version = client.get_model_version("topics-team", "1")
    assert version.run_id == run.info.run_id
    # Through the CLI, as a colleague would: no MLflow URI is set globally in this test process.
    text = "A bill to expand Medicare coverage of hearing aids"
    result = call_cli(["predict", "--model", "models:/topics-team/1", text], tmp_path,
                      MLFLOW_TRACKING_URI=team_server.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["topic"] == "Health"


def test_a_dead_database_behind_the_server_fails_training_at_once(team_server, team_run, tmp_path):
    """MLflow's /health still answers when its database is gone; training must not start anyway."""
    before = team_server.run_count()
    team_server.postgres.stop()
    try:
        home = tmp_path / "home"
        home.mkdir()
        start = time.perf_counter()
        result = forked_cli(["train"], home, MLFLOW_TRACKING_URI=team_server.url)
        elapsed = time.perf_counter() - start
    finally:
        team_server.postgres.start()
    print(f"failed in {elapsed:.1f} s: {result.stderr.strip()}")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: tracking server {team_server.url} answered 503 Service Unavailable "
                               "(TEMPORARILY_UNAVAILABLE: (psycopg2.OperationalError) connection to server at")
    assert elapsed < 60  # MLflow's client would retry a 503 with back-off for minutes
    assert files_under(home) == []
    assert team_server.run_count() == before


def test_stopping_the_command_stops_mlflow_and_postgresql(team_server, team_run):
    assert team_server.stop() == 0
    assert team_server.postgres.running_port() is None
    assert not port_in_use("127.0.0.1", team_server.postgres.port)
    with pytest.raises(OSError):
        urllib.request.urlopen(team_server.url + "/health", timeout=2)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another user")
def test_as_root_a_folder_user_postgres_cannot_reach_gets_one_line_and_leaves_nothing(tmp_path):
    folder = tmp_path / "team"  # pytest's temp folders are private to root
    result = forked_cli(["tracking-server", "--dir", str(folder), "--port", str(free_port()), "--postgres-port",
                         str(free_port())], tmp_path)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: user postgres cannot reach {folder / 'postgres'}")
    assert "pass --dir" in lines[0]
    assert not folder.exists()
