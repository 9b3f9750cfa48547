"""Many runs on one SQLite store: a new store is built by one process at a time, and a write lock held
longer than SQLite's busy timeout is waited out."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from pathlib import Path

import pytest

from policy_topics.tracking.store import retry_while_locked, store_client


def hold_write_lock(database: Path, seconds: float) -> threading.Thread:
    """Another process's long write transaction, as SQLite sees it: an exclusive lock on the file."""
    locked = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        locked.set()
        threading.Event().wait(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait()
    return thread


def write_row(database: Path, calls: list[int]) -> int:
    calls.append(1)
    with sqlite3.connect(database, timeout=0.05) as connection:
        connection.execute("INSERT INTO runs VALUES (1)")
    return len(calls)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE runs (id INTEGER)")
    return path


def test_a_write_blocked_past_the_busy_timeout_is_retried_until_the_lock_is_released(database):
    calls: list[int] = []
    holder = hold_write_lock(database, seconds=0.5)
    attempts = retry_while_locked(lambda: write_row(database, calls), delays_s=(0.2,) * 8)
    holder.join()
    assert attempts > 1
    assert sqlite3.connect(database).execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)


def test_a_lock_that_outlasts_every_retry_raises_the_locked_error(database):
    calls: list[int] = []
    holder = hold_write_lock(database, seconds=1.0)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        retry_while_locked(lambda: write_row(database, calls), delays_s=(0.05, 0.05))
    holder.join()
    assert len(calls) == 3


def test_other_store_errors_are_not_retried(database):
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: experiments")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry_while_locked(broken, delays_s=(0.05, 0.05))
    assert calls == [1]


@pytest.mark.e2e  # a second process holds the lock for 5 s
def test_opening_a_new_sqlite_store_waits_for_the_process_that_holds_the_store_lock(tmp_path):
    # A sweep opens the store with a bare client; were that not under the lock, it could build the tables
    # at the same time as a training does, which breaks the store.
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 (imported now: the wait below is for the lock alone)

    database = tmp_path / "mlruns" / "mlflow.db"
    database.parent.mkdir()
    opened: list[object] = []
    with open(database.parent / ".mlflow.db.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another process building the store holds it
        opener = threading.Thread(target=lambda: opened.append(store_client(f"sqlite:///{database}")))
        opener.start()
        opener.join(timeout=5)
        assert opener.is_alive() and not database.exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    opener.join(timeout=120)
    assert opened and [e.name for e in opened[0].search_experiments()] == ["Default"]
