"""Access tokens (file, environment, rotation, Bearer and Basic) and the rule for exposed addresses."""

from __future__ import annotations

import base64
import os
import time

import pytest

from policy_topics.errors import ConfigError
from policy_topics.serving import auth
from policy_topics.serving.auth import Tokens, check_exposure, is_loopback


def bearer(token: str) -> bytes:
    return f"Bearer {token}".encode()


def basic(password: str, user: str = "coder") -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def test_any_token_of_the_file_or_the_environment_is_valid_and_nothing_else(tmp_path):
    file = tmp_path / "tokens"
    file.write_text("# team tokens\nalpha-123\n\n  beta-456  # the lab\n")
    tokens = Tokens(file, "gamma-789, delta-000")
    assert tokens.enabled and tokens.count == 4
    for token in ("alpha-123", "beta-456", "gamma-789", "delta-000"):
        assert tokens.allows(bearer(token)) and tokens.allows(basic(token))
    for wrong in (None, b"", b"Bearer", b"Bearer ", bearer("alpha-12"), bearer("alpha-1234"), bearer("# team tokens"),
                  b"Token alpha-123", basic("alpha-123")[:-2], b"Basic !!!", bearer("ALPHA-123")):
        assert not tokens.allows(wrong), wrong


def test_a_changed_token_file_takes_effect_without_a_restart(tmp_path, monkeypatch):
    file = tmp_path / "tokens"
    file.write_text("old-token\n")
    tokens = Tokens(file)
    assert tokens.allows(bearer("old-token"))
    replacement = tmp_path / "tokens.new"
    replacement.write_text("new-token\n")
    os.replace(replacement, file)  # rotated as a deployment tool does: write, then rename
    monkeypatch.setattr(auth, "_RECHECK_S", 0.0)
    assert tokens.allows(bearer("new-token")) and not tokens.allows(bearer("old-token"))


def test_a_token_file_that_disappears_or_empties_refuses_everyone(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "_RECHECK_S", 0.0)
    file = tmp_path / "tokens"
    file.write_text("only-token\n")
    tokens = Tokens(file)
    file.write_text("# nobody for now\n")
    os.utime(file, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert not tokens.allows(bearer("only-token"))
    file.unlink()
    assert not tokens.allows(bearer("only-token")) and not tokens.allows(bearer(""))


def test_a_missing_or_empty_token_file_stops_the_start_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="token file not found"):
        Tokens(tmp_path / "nothing")
    (tmp_path / "empty").write_text("# to do\n")
    with pytest.raises(ConfigError, match="no token in"):
        Tokens(tmp_path / "empty")
    assert not Tokens(None, "").enabled


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                                ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.20", False), ("models.example.org", False)])
def test_only_loopback_addresses_count_as_this_machine_only(host, loopback):
    assert is_loopback(host) is loopback


def test_an_exposed_address_without_tokens_is_refused_unless_open_access(tmp_path):
    with pytest.raises(ConfigError, match=r"refusing to serve 0\.0\.0\.0 without access tokens.*--open-access"):
        check_exposure("0.0.0.0", 8080, None, open_access=False)
    check_exposure("0.0.0.0", 8080, None, open_access=True)
    check_exposure("0.0.0.0", 8080, Tokens(None, "t"), open_access=False)
    check_exposure("127.0.0.1", 8080, None, open_access=False)


def test_an_access_log_line_is_json_with_the_count_of_texts_and_the_texts_only_when_asked(tmp_path):
    import asyncio
    import json

    from policy_topics.serving.auth import AccessLog

    plain, full = AccessLog(str(tmp_path / "plain.log")), AccessLog(str(tmp_path / "full.log"), texts=True)
    for log in (plain, full):
        log.write("POST", '/predict"', 200, 2, 0.000412, ("127.0.0.1", 5000), ["Ein Gesetz \"über\" Schulen", "x"])
        log.write("GET", "/metadata", 401, None, 0.0001, None)
    [first, second] = [json.loads(line) for line in (tmp_path / "plain.log").read_text().splitlines()]
    assert first["path"] == '/predict"' and first["texts"] == 2 and first["ms"] == 0.412 and "text" not in first
    assert first["time"].endswith("Z") and first["client"] == "127.0.0.1"
    assert second == {**second, "status": 401, "texts": None, "client": None}
    assert json.loads((tmp_path / "full.log").read_text().splitlines()[0])["text"][0] == 'Ein Gesetz "über" Schulen'

    async def serving() -> str:  # in the server's event loop, lines reach the file within FLUSH_S
        log = AccessLog(str(tmp_path / "served.log"))
        log.write("POST", "/predict", 200, 1, 0.0003, ("127.0.0.1", 1))
        await asyncio.sleep(AccessLog.FLUSH_S + 0.3)
        return (tmp_path / "served.log").read_text()

    assert '"path": "/predict"' in asyncio.run(serving())
