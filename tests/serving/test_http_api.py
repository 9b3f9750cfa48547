"""The model server's access tokens, access log, MLflow scoring protocol, file uploads and paragraph
coding, spoken to over real HTTP on loopback, and `/invocations` compared with `mlflow models serve`."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, TrainedStore, call_cli, free_port
from live_server import Served, call, mlflow_serving, serving
from test_protocol import MLFLOW_PAYLOADS

pytestmark = pytest.mark.e2e

FILE_TOKENS = ("lab-token-1", "lab-token-2")
ENV_TOKEN = "ci-token-3"
SEED = REPO / "seeds" / "19-pakistan-us-foreign-ministers.txt"
PATHS = [("GET", "/"), ("GET", "/static/coder.js"), ("GET", "/metadata"), ("POST", "/predict"),
         ("POST", "/invocations"), ("POST", "/code"), ("GET", "/ping"), ("GET", "/no-such-path")]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("secured")


@pytest.fixture(scope="module")
def secured(demo_store: TrainedStore, folder: Path) -> Iterator[Served]:
    (folder / "tokens").write_text("# the lab\n" + "\n".join(FILE_TOKENS) + "\n")
    with serving(demo_store.home, folder, "--model", demo_store.registered, "--token-file", str(folder / "tokens"),
                 "--access-log", str(folder / "access.log"), "--max-texts", "20", "--max-bytes", "4000",
                 POLICY_TOPICS_SERVE_TOKENS=ENV_TOKEN) as live:
        yield live


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_without_a_valid_token_every_path_but_health_is_a_401_that_says_only_that(secured, method, path):
    for headers in ({}, auth("lab-token-"), auth("wrong"), {"Authorization": "lab-token-1"}):
        answer = call(secured.url + path, b"{}" if method == "POST" else None, headers, method)
        assert answer.status == 401 and answer.json == {"error": "missing or invalid access token"}
        assert answer.headers["www-authenticate"].startswith("Bearer") and "Basic" in answer.headers["www-authenticate"]
    assert call(secured.url + "/health").status == 200


def test_any_token_of_the_file_or_the_environment_opens_the_server(secured):
    body = json.dumps({"texts": ["A bill to expand Medicare coverage of hearing aids"]}).encode()
    for token in (*FILE_TOKENS, ENV_TOKEN):
        answer = call(secured.url + "/predict", body, auth(token))
        assert answer.status == 200 and answer.json["predictions"][0]["topic"] == "Health"
    login = base64.b64encode(b"coder:lab-token-2").decode()  # what a browser's login prompt sends
    basic = call(secured.url + "/", headers={"Authorization": f"Basic {login}"})
    assert basic.status == 200 and b"<title>" in basic.body
    assert call(secured.url + "/metadata", headers=auth(ENV_TOKEN)).json["access_tokens"] is True


def test_a_rotated_token_file_takes_effect_without_a_restart(secured, folder):
    body = json.dumps({"texts": ["Farm aid"]}).encode()
    assert call(secured.url + "/predict", body, auth("rotated-token")).status == 401
    new = folder / "tokens.new"
    new.write_text(f"rotated-token\n{FILE_TOKENS[1]}\n")
    os.replace(new, folder / "tokens")
    deadline = time.monotonic() + 10
    while call(secured.url + "/predict", body, auth("rotated-token")).status != 200:
        assert time.monotonic() < deadline, "the new token file was not read within 10 s"
        time.sleep(0.2)
    assert call(secured.url + "/predict", body, auth(FILE_TOKENS[0])).status == 401  # taken out of the file
    assert call(secured.url + "/predict", body, auth(ENV_TOKEN)).status == 200
    assert "token file" in secured.log.read_text() and "changed" in secured.log.read_text()


def test_the_access_log_has_time_path_status_texts_and_latency_but_never_the_texts(secured, folder):
    secret = "A confidential memo on the defense budget"
    before = len((folder / "access.log").read_text().splitlines())
    call(secured.url + "/predict", json.dumps({"texts": [secret, "two"]}).encode(), auth(ENV_TOKEN))
    call(secured.url + "/metadata", headers=auth("nope"))
    deadline = time.monotonic() + 5  # lines are written within 0.2 s
    while len((folder / "access.log").read_text().splitlines()) < before + 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    entries = [json.loads(line) for line in (folder / "access.log").read_text().splitlines()][before:]
    assert secret not in (folder / "access.log").read_text()
    predict = [e for e in entries if e["path"] == "/predict" and e["texts"] == 2][-1]
    assert predict["status"] == 200 and predict["method"] == "POST" and 0 < predict["ms"] < 10_000
    assert predict["time"].startswith("20") and predict["client"] == "127.0.0.1"
    assert any(e["path"] == "/metadata" and e["status"] == 401 and e["texts"] is None for e in entries)


def test_log_texts_puts_the_texts_into_the_access_log(demo_store, tmp_path):
    with serving(demo_store.home, tmp_path, "--model", demo_store.registered, "--access-log", "-",
                 "--log-texts") as live:
        call(live.url + "/predict", json.dumps({"texts": ["Drought relief for wheat farmers"]}).encode())
        deadline = time.monotonic() + 5  # lines are written within 0.2 s
        while '"text": ["Drought relief for wheat farmers"]' not in live.log.read_text():
            assert time.monotonic() < deadline, live.log.read_text()[-500:]
            time.sleep(0.1)


def test_an_exposed_address_without_tokens_is_refused_in_one_line(demo_store):
    result = call_cli(["serve", "--host", "0.0.0.0", "--port", str(free_port())], demo_store.home)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "refusing to serve 0.0.0.0 without access tokens" in line and "--open-access" in line


def _same(ours: object, theirs: object) -> bool:
    """Equal answers, MLflow's NaN (its JSON for an empty text's probability) standing for our null."""
    if isinstance(theirs, float) and math.isnan(theirs):
        return ours is None
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(_same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs, strict=True))
    return ours == theirs


def test_invocations_answers_mlflows_documented_payloads_as_mlflow_models_serve_does(demo_store, tmp_path):
    payloads = {**MLFLOW_PAYLOADS,
                "params": {"dataframe_split": {"columns": ["text"], "data": [["Medicare for seniors"], [""]]},
                           "params": {"top_k": 2, "explain": 3, "threshold": 0.3}}}
    csv_body = b'text\n"A bill to expand Medicare coverage"\n"The Navy will buy three submarines"\n'
    with serving(demo_store.home, tmp_path, "--model", demo_store.registered) as ours, \
            mlflow_serving(demo_store.home, tmp_path, demo_store.registered) as theirs:
        for name, payload in payloads.items():
            body = json.dumps(payload).encode()
            mine, reference = call(ours.url + "/invocations", body), call(theirs.url + "/invocations", body)
            assert mine.status == reference.status == 200, (name, mine.body[:300], reference.body[:300])
            assert _same(mine.json, json.loads(reference.body)), name
            assert list(mine.json) == ["predictions"]
        headers = {"Content-Type": "text/csv"}
        mine, reference = call(ours.url + "/invocations", csv_body, headers), call(theirs.url + "/invocations",
                                                                                 csv_body, headers)
        assert mine.status == reference.status == 200 and _same(mine.json, json.loads(reference.body))
        for bad in (b'{"texts": ["x"]}', b'{"dataframe_split": {"columns": ["body"], "data": [["x"]]}}'):
            mine, reference = call(ours.url + "/invocations", bad), call(theirs.url + "/invocations", bad)
            assert 400 <= mine.status < 500 and 400 <= reference.status < 500
            assert list(mine.json) == ["error"] and "\n" not in mine.json["error"]


@pytest.fixture(scope="module")
def open_server(demo_store: TrainedStore, folder: Path) -> Iterator[Served]:
    with serving(demo_store.home, folder, "--model", demo_store.registered, "--max-bytes", "4000") as live:
        yield live


def code(server: Served, name: str, data: bytes, **params: str):
    from urllib.parse import urlencode

    return call(f"{server.url}/code?{urlencode({'name': name, **params})}", data,
                {"Content-Type": "application/octet-stream"})


def test_an_uploaded_csv_is_coded_and_its_download_is_what_predict_writes(open_server, demo_store, tmp_path):
    data = (b'text,party\n"A bill to expand Medicare coverage of hearing aids",D\n'
            b'"Emergency drought payments for wheat farmers",R\n')
    shown = code(open_server, "bills.csv", data, explain="5")
    assert shown.status == 200
    documents = shown.json["documents"]
    assert [d["id"] for d in documents] == ["bills.csv:2", "bills.csv:3"]
    assert documents[0]["topic"] == "Health" and documents[0]["explanation"][0]["share"] > 0
    assert shown.json["loaded"] == "models:/topics-demo/1" and 0 < shown.json["threshold"] <= 1
    download = code(open_server, "bills.csv", data, explain="5", format="csv")
    assert download.status == 200 and download.headers["content-type"].startswith("text/csv")
    assert 'filename="bills-coded.csv"' in download.headers["content-disposition"]
    (tmp_path / "bills.csv").write_bytes(data)
    result = call_cli(["predict", "--input", str(tmp_path / "bills.csv"), "--explain", "5", "--output",
                       str(tmp_path / "out.csv")], demo_store.home)
    assert result.returncode == 0, result.stderr
    assert download.body == (tmp_path / "out.csv").read_bytes()
    assert list(csv.DictReader(io.StringIO(download.body.decode())))[1]["party"] == "R"


@pytest.mark.parametrize(("name", "data", "params", "status", "phrase"), [
    ("sheet.xlsx", b"PK\x03\x04\x14\x00 zipped", {}, 415, "sheet.xlsx is not a CSV or text file"),
    ("bills.csv", b"title,party\nA bill,D\n", {}, 422, "column 'text' (the text column) not found in bills.csv"),
    ("bills.csv", b"title,party\nA bill,D\n", {"column": "headline"}, 422, "column 'headline'"),
    ("bills.csv", b"text\nna\xefve caf\xe9\n", {}, 422, "bills.csv is not valid utf-8"),
    ("empty.txt", b"", {}, 422, "empty.txt is empty"),
    ("big.txt", b"word " * 1000, {}, 413, "split the document"),
    ("bills.csv", b"text\nx\n", {"format": "xlsx"}, 422, "format must be json or csv"),
    ("bills.csv", b"text\nx\n", {"top_k": "many"}, 422, "top_k must be an integer"),
    ("bills.csv", b"text\nx\n", {"sheet": "1"}, 422, "unknown parameter(s) sheet"),
])
def test_a_bad_upload_is_a_4xx_with_a_one_line_json_error(open_server, name, data, params, status, phrase):
    answer = code(open_server, name, data, **params)
    assert answer.status == status and list(answer.json) == ["error"], answer.body[:300]
    error = answer.json["error"]
    assert phrase in error and "\n" not in error and "Traceback" not in error


def test_segment_paragraphs_gives_the_seed_article_its_paragraph_topics_and_mix(open_server, demo_store):
    text = SEED.read_text()
    answer = call(open_server.url + "/predict", json.dumps({"texts": [text], "segment": "paragraphs"}).encode())
    assert answer.status == 200
    [record] = answer.json["predictions"]
    assert len(record["paragraphs"]) == 5 and abs(sum(m["share"] for m in record["topic_mix"]) - 1) < 1e-3
    result = call_cli(["predict", "--segment", "paragraphs", "--input", str(SEED)], demo_store.home)
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["paragraphs"] == record["paragraphs"] and row["topic_mix"] == record["topic_mix"]
    uploaded = code(open_server, SEED.name, SEED.read_bytes(), segment="paragraphs")
    assert uploaded.json["documents"][0]["topic_mix"] == record["topic_mix"]


def test_a_single_document_over_the_limit_is_told_how_to_split_it(open_server):
    answer = call(open_server.url + "/predict", json.dumps({"texts": ["a long speech " * 400]}).encode())
    assert answer.status == 413 and "split the document" in answer.json["error"]
    assert "split the batch" not in answer.json["error"]
    many = call(open_server.url + "/predict", json.dumps({"texts": ["a short text"] * 400}).encode())
    assert many.status == 413 and "split the batch" in many.json["error"]
