"""The model server, started as a real process and spoken to over real HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import TrainedStore, call_cli, free_port, request, running_server

pytestmark = pytest.mark.e2e

TEXTS = ["A bill to expand Medicare coverage of hearing aids for seniors",
         "The Navy will buy three more attack submarines under the defense budget",
         "   ",
         "Farmers in the valley received emergency drought payments for failed wheat crops"]


@pytest.fixture(scope="module")
def server(demo_store: TrainedStore) -> Iterator[str]:
    with running_server(demo_store.home, "--max-texts", "20", "--max-bytes", "4000") as live:
        yield live.url


def test_health_and_metadata_describe_the_champion(server, demo_store):
    assert request(server + "/health") == (200, {"status": "ok"})
    status, meta = request(server + "/metadata")
    assert status == 200
    assert meta["model_uri"] == "models:/topics-demo@champion" and meta["run_id"] == demo_store.run_id
    assert meta["loaded"] == "models:/topics-demo/1" and meta["version"] == "1"  # what the alias pointed at
    assert {"code": 3, "topic": "Health"} in meta["topics"] and len(meta["topics"]) == 21
    assert 0 < meta["metrics"]["test_macro_f1"] <= 1
    assert meta["limits"] == {"max_texts": 20, "max_bytes": 4000}


def test_a_batch_gets_topics_alternatives_and_flags(server):
    status, body = request(server + "/predict", json.dumps({"texts": TEXTS, "top_k": 2, "explain": 3}).encode())
    assert status == 200
    health, defense, empty, farm = body["predictions"]
    assert (health["topic"], health["code"], health["status"]) == ("Health", 3, "coded")
    assert defense["topic"] == "Defense" and farm["topic"] == "Agriculture"
    assert len(health["top_topics"]) == 2 and health["top_topics"][0]["probability"] == health["probability"]
    assert health["explanation"] and health["explanation"][0]["weight"] > 0
    assert empty == {"topic": None, "code": None, "probability": None, "status": "empty", "top_topics": [],
                     "explanation": []}


def test_threshold_flags_texts_the_model_is_unsure_about(server):
    status, body = request(server + "/predict", json.dumps({"texts": TEXTS[:1], "threshold": 1.0}).encode())
    assert status == 200
    record = body["predictions"][0]
    assert record["status"] == "uncertain" and record["topic"] is None and record["top_topics"][0]["topic"] == "Health"


@pytest.mark.parametrize(("body", "status", "phrase"), [
    (b'{"texts": ["unterminated', 400, "malformed JSON"),
    (b"\xff\xfe not utf-8", 400, "malformed JSON"),
    (b'["a list", "not an object"]', 422, '"texts": [string, ...]'),
    (b'{"text": "singular"}', 422, '"texts": [string, ...]'),
    (b'{"texts": ["ok", 3]}', 422, "texts[1] is int, not a string"),
    (b'{"texts": ["ok"], "top_k": 0}', 422, "top_k must be an integer"),
    (b'{"texts": ["ok"], "threshold": "high"}', 422, "threshold must be a number"),
    (b'{"texts": ["ok"], "colour": "red"}', 422, "unknown field(s) colour"),
    (json.dumps({"texts": ["short"] * 21}).encode(), 413, "limit of 20 per request"),
    (json.dumps({"texts": ["x" * 5000]}).encode(), 413, "over the server's limit of 4,000 bytes"),
])
def test_bad_requests_get_a_status_and_a_message_not_a_traceback(server, body, status, phrase):
    got, answer = request(server + "/predict", body)
    assert got == status and phrase in answer["error"]
    assert "Traceback" not in answer["error"]
    assert request(server + "/health")[0] == 200  # still up


def test_empty_list_wrong_method_and_unknown_path(server):
    assert request(server + "/predict", b'{"texts": []}')[1]["predictions"] == []
    assert request(server + "/predict", method="GET")[0] == 405
    assert request(server + "/nothing-here")[0] == 404


def test_server_and_predict_command_give_identical_answers(server, demo_store):
    _, body = request(server + "/predict", json.dumps({"texts": TEXTS, "explain": 2}).encode())
    result = call_cli(["predict", "--explain", "2", *TEXTS], demo_store.home)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [{k: v for k, v in r.items() if k not in ("id", "text")} for r in rows] == body["predictions"]


def test_unknown_model_at_start_up_is_one_line_listing_what_exists(demo_store):
    result = call_cli(["serve", "--model", "models:/topics-demo@nightly", "--port", str(free_port())],
                      demo_store.home)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "models:/topics-demo@nightly" in lines[0]
    assert "topics-demo (versions 1; champion -> 1" in lines[0]  # other tests may add aliases


def test_several_workers_each_load_the_model_and_answer(demo_store):
    with running_server(demo_store.home, "--workers", "2", "--model", demo_store.registered) as live:
        base = live.url
        answers = [request(base + "/predict", json.dumps({"texts": TEXTS[:2]}).encode()) for _ in range(6)]
        assert {status for status, _ in answers} == {200}
        assert {tuple(p["topic"] for p in body["predictions"]) for _, body in answers} == {("Health", "Defense")}
        assert request(base + "/metadata")[1]["model_uri"] == demo_store.registered
