"""What the server reads from a request: MLflow's scoring protocol, the project's /predict body, uploaded
files, and the size limit's message; every refusal a status and one line."""

from __future__ import annotations

import json

import pytest

from policy_topics.errors import RequestError
from policy_topics.serving.documents import Reading
from policy_topics.serving.protocol import Limits, parse_invocations, parse_predict
from policy_topics.serving.uploads import read_upload

LIMITS = Limits(max_texts=5, max_bytes=10_000)
TEXTS = ["A bill to expand Medicare coverage", "The Navy will buy three submarines"]

# The request shapes of MLflow's documentation for `mlflow models serve` ("Deploy MLflow Model as a Local
# Inference Server", mlflow 3.x), with this model's one input column, `text`.
MLFLOW_PAYLOADS = {
    "dataframe_split": {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}},
    "dataframe_split with index": {"dataframe_split": {"index": [0, 1], "columns": ["text"],
                                                       "data": [[t] for t in TEXTS]}},
    "dataframe_records": {"dataframe_records": [{"text": t} for t in TEXTS]},
    "inputs as a list": {"inputs": TEXTS},
    "inputs as columns": {"inputs": {"text": TEXTS}},
    "instances as a list": {"instances": TEXTS},
    "instances as records": {"instances": [{"text": t} for t in TEXTS]},
}


@pytest.mark.parametrize("name", MLFLOW_PAYLOADS)
def test_every_mlflow_json_format_gives_the_texts_in_order(name):
    query = parse_invocations(json.dumps(MLFLOW_PAYLOADS[name]).encode(), "application/json", LIMITS, 21)
    assert query.texts == TEXTS and query.top_k == 3 and query.explain == 0 and query.threshold is None


def test_a_csv_body_is_read_by_its_text_column():
    body = (b'id,text\n1,"A bill to expand Medicare coverage"\n2,"The Navy will buy three submarines"\n')
    assert parse_invocations(body, "text/csv; charset=utf-8", LIMITS, 21).texts == TEXTS


def test_mlflow_params_set_top_k_explain_and_threshold():
    payload = {**MLFLOW_PAYLOADS["dataframe_split"], "params": {"top_k": 1, "explain": 4, "threshold": 0.9}}
    query = parse_invocations(json.dumps(payload).encode(), "application/json", LIMITS, 21)
    assert (query.top_k, query.explain, query.threshold) == (1, 4, 0.9)


@pytest.mark.parametrize(("body", "content_type", "status", "phrase"), [
    (b'{"texts": ["x"]}', "application/json", 400, "exactly one of dataframe_split"),
    (b'{"inputs": ["x"], "instances": ["y"]}', "application/json", 400, "exactly one of"),
    (b'{"dataframe_split": {"columns": ["body"], "data": [["x"]]}}', "application/json", 422, "no column 'text'"),
    (b'{"dataframe_records": [{"body": "x"}]}', "application/json", 422, "needs a field 'text'"),
    (b'{"inputs": [1, 2]}', "application/json", 422, "inputs[0] is int"),
    (b'{"inputs": "one string"}', "application/json", 422, "inputs must be a list"),
    (b'{"inputs": ["x"], "params": {"colour": 1}}', "application/json", 422, "unknown param(s) \"colour\""),
    (b'{"inputs": ["x"], "params": {"top_k": 0}}', "application/json", 422, "top_k must be an integer"),
    (b'{"inputs": ["x"', "application/json", 400, "malformed JSON"),
    (b"body\nx\n", "text/csv", 422, "no column 'text'"),
    (b"text\n\xff\xfe\n", "text/csv", 400, "not valid UTF-8"),
    (b"", "text/csv", 422, "empty CSV body"),
    (b"x", "text/plain", 415, "use application/json or text/csv"),
    (json.dumps({"inputs": ["x"] * 6}).encode(), "application/json", 413, "limit of 5 per request"),
])
def test_bad_invocations_get_a_4xx_and_one_line(body, content_type, status, phrase):
    with pytest.raises(RequestError) as caught:
        parse_invocations(body, content_type, LIMITS, 21)
    assert caught.value.status == status and phrase in str(caught.value) and "\n" not in str(caught.value)


def test_predict_takes_segment_paragraphs_and_refuses_other_segments():
    query = parse_predict(b'{"texts": ["a"], "segment": "paragraphs"}', LIMITS, 21)
    assert query.segment == "paragraphs"
    with pytest.raises(RequestError, match="segment must be one of paragraphs"):
        parse_predict(b'{"texts": ["a"], "segment": "sentences"}', LIMITS, 21)


def test_a_single_text_over_the_size_limit_is_told_to_split_the_document_not_the_batch():
    one = LIMITS.too_large(json.dumps({"texts": ["word " * 3000]}).encode()[:10_000])
    many = LIMITS.too_large(json.dumps({"texts": ["word " * 50] * 60}).encode()[:10_000])
    assert one.status == many.status == 413
    assert "split the batch" not in str(one) and "split the document" in str(one)
    assert "--segment paragraphs" in str(one) and "--max-bytes" in str(one)
    assert "split the batch" in str(many)


READING = Reading("text")


@pytest.mark.parametrize(("name", "data", "status", "phrase"), [
    ("corpus.xlsx", b"PK\x03\x04 zipped sheets", 415, "corpus.xlsx is not a CSV or text file (it is a zip archive"),
    ("corpus.csv", b"PK\x03\x04 zipped sheets", 415, "it is a zip archive"),
    ("scan.pdf", b"%PDF-1.7 ...", 415, "is not a CSV or text file"),
    ("data.txt", b"text\x00\x00\x01binary", 415, "it is binary data"),
    ("notes.docx", b"a plain name is not enough", 415, "does not end in .csv, .tsv or .txt"),
    ("corpus.csv", b"body,label\nsome text,3\n", 422, "column 'text' (the text column) not found in corpus.csv; "
                                                   "columns found: body, label"),
    ("corpus.csv", b"text\nna\xefve caf\xe9\n", 422, "corpus.csv is not valid utf-8"),
    ("corpus.csv", b"", 422, "corpus.csv is empty: nothing to code"),
    ("corpus.csv", b"  \n\n", 422, "is empty"),
    ("corpus.csv", b"text,label\n", 422, "has a header line but no rows"),
    ("corpus.csv", b"text\n" + b"a text\n" * 6, 413, "holds 6 documents, more than the server's limit of 5"),
])
def test_bad_uploads_get_a_4xx_that_names_the_file_and_the_fix(name, data, status, phrase):
    with pytest.raises(RequestError) as caught:
        read_upload(name, data, READING, LIMITS)
    assert caught.value.status == status and phrase in str(caught.value) and "\n" not in str(caught.value)


def test_an_upload_reads_as_predict_reads_the_same_file(tmp_path):
    from policy_topics.serving.documents import read_documents

    data = b'text,party\n"A bill to expand Medicare",D\n"Farm aid, again",R\n'
    (tmp_path / "corpus.csv").write_bytes(data)
    assert read_upload("corpus.csv", data, READING, LIMITS) == list(
        read_documents([], str(tmp_path / "corpus.csv"), READING))
    [document] = read_upload("speech.txt", "Ein Gesetz über Schulen\n\nZweiter Absatz".encode(), READING, LIMITS)
    assert document.id == "speech.txt" and document.text.endswith("Zweiter Absatz")
    latin = read_upload("old.csv", "text\ncaf\xe9 policy\n".encode("latin-1"), Reading("text", encoding="latin-1"),
                        LIMITS)
    assert latin[0].text == "caf\u00e9 policy"
