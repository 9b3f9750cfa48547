"""``policy-topics`` commands in processes of their own, without paying the libraries' imports each time.

A new ``python -m policy_topics.cli`` spends 8-10 s of CPU importing MLflow, its SQLAlchemy store, skops
and scikit-learn before it does anything; a suite that starts a few dozen servers and trainings pays that
again and again on two cores. Here the commands run in children of a fork server (multiprocessing's
``forkserver``, one per test process) that has imported those libraries once (:mod:`warm_libraries`).
Each child is a process of its own: its own pid and session, signals, environment, working directory,
standard streams on pipes, exit code and exit handlers, running the console command's ``main()``.

What such a child cannot show is what a *new interpreter* does: its hash seed (the same in every child),
what importing prints, or which modules a command imports. Tests about those start a fresh interpreter
(:func:`conftest.run_cli` and friends).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from multiprocessing import forkserver, reduction
from typing import IO, Any

PRELOAD = "warm_libraries"


class _Fd:
    """A file descriptor that crosses to the child: the fork server passes it over its socket."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return _inherited, (reduction.DupFd(self.fd),)


def _inherited(dup: Any) -> int:
    return dup.detach()


def _child(argv: Sequence[str], env: dict[str, str], cwd: str, fds: tuple[int, int, int],
           new_session: bool) -> None:
    """The child's body: become ``policy-topics ARGV`` started from a shell, run it, exit as it would."""
    if PRELOAD not in sys.modules:  # the fork server skips a preload that fails to import, silently
        os.write(fds[2], f"the fork server did not import {PRELOAD}\n".encode())
        os._exit(70)
    if new_session:
        os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 (the process's own standard streams)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 (line by line, as `python -u` does)
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = ["policy-topics", *argv]
    from policy_topics.cli import main

    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # what an uncaught exception does to a Python process
        traceback.print_exc()
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # then the exit handlers, as an interpreter's exit does
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _context() -> multiprocessing.context.ForkServerContext:
    """The fork server, started on first use with this folder on its import path (Python 3.11's fork
    server does not take its parent's ``sys.path``) and "__main__" (pytest's script) preloaded too, or
    every child would run that script again on its way in."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", PRELOAD])
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(__file__), saved]))
    try:
        forkserver.ensure_running()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return context


class WarmProcess:
    """A started command, with the part of :class:`subprocess.Popen` the tests use (text streams)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str | os.PathLike[str], *,
                 new_session: bool = False, stdout: IO[Any] | int | None = None,
                 stderr: IO[Any] | int | None = None) -> None:
        """Standard input is empty; ``stdout`` and ``stderr`` as in :class:`subprocess.Popen`: a pipe by
        default (readable as ``.stdout``/``.stderr``), an open file, ``subprocess.DEVNULL``, or
        ``subprocess.STDOUT`` for standard error."""
        stdin_r = os.open(os.devnull, os.O_RDONLY)
        mine: list[int] = [stdin_r]  # the fds this process closes once the child has its copies
        out_r, out_w = _target(stdout, mine)
        err_r, err_w = (None, out_w) if stderr == subprocess.STDOUT else _target(stderr, mine)
        fds = (_Fd(stdin_r), _Fd(out_w), _Fd(err_w))
        self._process = _context().Process(target=_child, args=(list(argv), env, os.fspath(cwd), fds, new_session))
        try:
            self._process.start()
        finally:
            for fd in mine:
                os.close(fd)
        self.pid: int = self._process.pid  # type: ignore[assignment]
        self.args = list(argv)
        self.stdout: IO[str] | None = open(out_r) if out_r is not None else None  # noqa: SIM115
        self.stderr: IO[str] | None = open(err_r) if err_r is not None else None  # noqa: SIM115

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._process.exitcode

    def send_signal(self, signum: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Everything left on the piped standard output and error, once the command has exited."""
        streams = {name: stream for name, stream in (("out", self.stdout), ("err", self.stderr)) if stream}
        parts = dict.fromkeys(("out", "err"), "")
        readers = [threading.Thread(target=lambda n=name, s=stream: parts.__setitem__(n, s.read()), daemon=True)
                   for name, stream in streams.items()]
        for reader in readers:
            reader.start()
        self.wait(timeout)
        for reader in readers:
            reader.join(timeout)
        for stream in streams.values():
            stream.close()
        return parts["out"], parts["err"]


def _target(given: IO[Any] | int | None, mine: list[int]) -> tuple[int | None, int]:
    """Where a standard stream of the child goes: (the read end this process keeps, or None; the fd the
    child gets). The fds to close here once the child has its copies go into ``mine``."""
    if given is None:
        read, write = os.pipe()
        mine.append(write)
        return read, write
    if given == subprocess.DEVNULL:
        write = os.open(os.devnull, os.O_WRONLY)
        mine.append(write)
        return None, write
    return None, given.fileno()  # type: ignore[union-attr]

