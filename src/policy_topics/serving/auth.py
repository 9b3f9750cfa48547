"""Access tokens and the access log of the model server.

Tokens come from a token file (one per line; blank lines and ``#`` comments ignored) and from the
environment variable ``POLICY_TOPICS_SERVE_TOKENS`` (separated by commas or white space); any of them is
valid. A client sends one as ``Authorization: Bearer TOKEN``; a browser may send it as the password of
HTTP Basic authentication (any user name), which is what its own login prompt does. Tokens are compared
in constant time. The token file is looked at again at most once a second and re-read when it changed
(rotation without a restart); a token file that has gone or holds no token refuses every request.

The access log is one JSON line per request: time, method, path, status, number of texts, latency in
milliseconds, and the client's address; the texts only when asked for. Lines reach the file within
``AccessLog.FLUSH_S`` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from policy_topics.errors import ConfigError

log = logging.getLogger(__name__)

TOKENS_ENV = "POLICY_TOPICS_SERVE_TOKENS"
_RECHECK_S = 1.0


def _parse(text: str) -> list[bytes]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line.encode() for line in lines if line]


class Tokens:
    """The valid tokens: from a file (re-read when it changes) and from the environment."""

    def __init__(self, file: Path | None, from_env: str = "") -> None:
        self.file = file
        self.from_env = [t.encode() for t in from_env.replace(",", " ").split()]
        self._from_file: list[bytes] = []
        self._all = tuple(self.from_env)  # the file's tokens and the environment's, checked on every request
        self._seen: tuple[int, int, int] | None = None
        self._checked = 0.0
        if file is not None:
            if not file.is_file():
                raise ConfigError(f"token file not found: {file}; write one token per line into it")
            self._reload()
            if not self._from_file:
                raise ConfigError(f"no token in {file}; write one token per line (# starts a comment)")

    @property
    def enabled(self) -> bool:
        return self.file is not None or bool(self.from_env)

    @property
    def count(self) -> int:
        return len(self._from_file) + len(self.from_env)

    def _reload(self) -> None:
        assert self.file is not None
        try:
            stat = self.file.stat()
            seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if seen != self._seen:
                self._from_file = _parse(self.file.read_text(encoding="utf-8"))
                self._all = (*self._from_file, *self.from_env)
                if self._seen is not None:
                    log.warning("token file %s changed: %d token(s) now", self.file, len(self._from_file))
                self._seen = seen
        except (OSError, UnicodeDecodeError) as exc:  # fail closed: no token from a file that cannot be read
            if self._from_file or self._seen is not None:
                log.warning("token file %s cannot be read (%s): its tokens are refused", self.file, exc)
            self._from_file, self._seen, self._all = [], None, tuple(self.from_env)

    def valid(self, given: bytes) -> bool:
        """Whether ``given`` is one of the tokens (every token compared, each in constant time)."""
        if self.file is not None and time.monotonic() - self._checked >= _RECHECK_S:
            self._checked = time.monotonic()
            self._reload()
        found = False
        for token in self._all:
            found |= hmac.compare_digest(given, token)
        return found and bool(given)

    def allows(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header value carries a valid token (Bearer, or Basic's password)."""
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(b" ")
        scheme = scheme.lower()
        if scheme == b"bearer":
            return self.valid(credentials.strip())
        if scheme == b"basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            return self.valid(decoded.partition(b":")[2])
        return False


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, port: int, tokens: Tokens | None, open_access: bool) -> None:
    """Refuse to serve an address other machines can reach without tokens, unless ``open_access``."""
    if tokens is None and not is_loopback(host) and not open_access:
        raise ConfigError(f"refusing to serve {host} without access tokens: anyone who can reach port {port} could "
                          f"use the model; give --token-file FILE or set {TOKENS_ENV}, or pass --open-access if "
                          "that is intended (e.g. behind a proxy that checks access)")


class AccessLog:
    """One JSON line per request to a file (appended) or to standard error (``-``). Lines are buffered and
    written at most ``FLUSH_S`` seconds after the request (one write for many lines under load), and when
    the server stops."""

    FLUSH_S = 0.2

    def __init__(self, target: str, texts: bool = False) -> None:
        self.texts = texts
        self._second, self._stamp = -1, ""
        self._flush_due = False
        self.handle: IO[str] = (
            open(sys.stderr.fileno(), "w", encoding="utf-8", buffering=1 << 16, closefd=False) if target == "-"  # noqa: SIM115
            else open(Path(target).expanduser(), "a", encoding="utf-8", buffering=1 << 16))  # noqa: SIM115 (for the server's life)

    def flush(self) -> None:
        self._flush_due = False
        self.handle.flush()

    def write(self, method: str, path: str, status: int, n_texts: int | None, seconds: float,
              client: Any, texts: list[str] | None = None) -> None:
        """One line, formatted by hand (a few microseconds: it is on every request's path)."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line = (f'{{"time": "{self._stamp}.{int((now - second) * 1000):03d}Z", "method": {json.dumps(method)}, '
                f'"path": {json.dumps(path)}, "status": {status}, "texts": {"null" if n_texts is None else n_texts}, '
                f'"ms": {seconds * 1e3:.3f}, "client": {json.dumps(client[0]) if client else "null"}')
        if self.texts and texts is not None:
            line += f', "text": {json.dumps(texts, ensure_ascii=False)}'
        self.handle.write(line + "}\n")
        if not self._flush_due:
            self._flush_due = True
            try:
                asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)
            except RuntimeError:  # outside an event loop: at once
                self.flush()


def env_tokens() -> str:
    return os.environ.get(TOKENS_ENV, "")
