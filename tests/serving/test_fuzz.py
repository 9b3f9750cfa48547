"""Property-based tests: whatever bytes, encodings, shapes or JSON arrive, the answer is a result or a
clear error, never a crash or a traceback."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from conftest import load_group
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from policy_topics.data.loading import ReadOptions, read_table
from policy_topics.data.prep import CleaningReport, clean
from policy_topics.data.text import normalize_text
from policy_topics.errors import PolicyTopicsError, RequestError
from policy_topics.serving.protocol import Limits, parse_invocations, parse_predict

CODES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23]
LIMITS = Limits(max_texts=50, max_bytes=2_000_000)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text())
def test_normalising_any_text_gives_clean_single_spaced_nfkc(text):
    out = normalize_text(text)
    assert out == out.strip() and "  " not in out
    assert not any(unicodedata.category(c) == "Cc" for c in out)
    assert normalize_text(out) == out  # idempotent


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=80), st.one_of(st.sampled_from(CODES), st.text(max_size=5),
                                                          st.none())), max_size=60))
@example(rows=[("0", "1E100")])  # found by the fuzzer: a number too big for any code once overflowed int64
def test_cleaning_any_table_keeps_only_texts_with_known_topics_or_says_which_label_is_bad(rows):
    frame = pd.DataFrame(rows, columns=["text", "label"]).astype({"text": "object"})
    try:
        out = clean(frame, "NFKC", "drop", "fuzz.csv", CleaningReport())
    except PolicyTopicsError as exc:
        assert "\n" not in str(exc)
        return
    assert not out["text"].duplicated().any() and (out["text"].str.len() > 0).all()
    assert set(out["label"]).issubset(CODES)


def _write(path: Path, rows: list[tuple[str, str]], delimiter: str, encoding: str, header: tuple[str, str]) -> None:
    import csv

    with open(path, "w", encoding=encoding, errors="replace", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.text(max_size=40), st.sampled_from([str(c) for c in CODES] + ["x", ""])),
                     max_size=8),
       delimiter=st.sampled_from([",", ";", "\t", "|"]), read_delimiter=st.sampled_from([",", ";", "\t", None]),
       encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]), read_encoding=st.sampled_from(["utf-8", "latin-1"]),
       header=st.sampled_from([("text", "label"), ("body", "label"), ("text", "topic")]))
def test_reading_any_delimited_file_gives_a_table_or_a_one_line_error(tmp_path_factory, rows, delimiter,
                                                                      read_delimiter, encoding, read_encoding,
                                                                      header):
    path = tmp_path_factory.mktemp("fuzz") / "data.csv"
    _write(path, rows, delimiter, encoding, header)
    opts = ReadOptions("text", "label", "csv", read_delimiter, read_encoding)
    try:
        frame = read_table(path, opts)
    except PolicyTopicsError as exc:
        assert "\n" not in str(exc) and "Traceback" not in str(exc)
        return
    assert list(frame.columns) == ["text", "label"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000), st.sampled_from(["csv", "tsv", "jsonl", "parquet"]))
def test_reading_random_bytes_in_any_format_is_a_one_line_error_or_a_table(tmp_path_factory, blob, fmt):
    path = tmp_path_factory.mktemp("bytes") / f"data.{fmt}"
    path.write_bytes(blob)
    try:
        frame = read_table(path, ReadOptions("text", "label", fmt))
    except PolicyTopicsError as exc:
        assert "\n" not in str(exc)
        return
    assert list(frame.columns) == ["text", "label"]


def test_a_huge_line_is_read_whole(tmp_path):
    path = tmp_path / "huge.csv"
    _write(path, [("policy " * 400_000, "3"), ("farm bill", "4")], ",", "utf-8", ("text", "label"))
    frame = read_table(path, ReadOptions("text", "label"))
    assert len(frame) == 2 and len(frame["text"][0]) > 2_000_000


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@FUZZ
@given(st.one_of(JSON, st.fixed_dictionaries({"texts": st.lists(st.one_of(st.text(), JSON), max_size=5)},
                                              optional={"top_k": JSON, "explain": JSON, "threshold": JSON})))
def test_any_json_body_is_parsed_or_refused_with_400_422_or_413(payload):
    body = json.dumps(payload).encode()
    try:
        query = parse_predict(body, LIMITS, n_topics=21)
    except RequestError as exc:
        assert exc.status in (400, 413, 422) and "\n" not in str(exc)
        return
    assert all(isinstance(t, str) for t in query.texts) and 1 <= query.top_k <= 21 and 0 <= query.explain <= 50
    assert query.threshold is None or 0 <= query.threshold <= 1


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_as_a_body_are_parsed_or_refused_cleanly(body):
    try:
        parse_predict(body, LIMITS, n_topics=21)
    except RequestError as exc:
        assert exc.status in (400, 422)


@FUZZ
@given(st.one_of(JSON, st.fixed_dictionaries({}, optional={
    "dataframe_split": JSON, "dataframe_records": JSON, "inputs": JSON, "instances": JSON, "params": JSON})),
    st.sampled_from(["application/json", "text/csv", "application/json; charset=utf-8", ""]))
@example({"\n": None}, "application/json")  # a field name with a newline once split the error over two lines
@example({"inputs": ["x"], "params": {"a\nb": 1}}, "application/json")
def test_any_mlflow_style_body_is_parsed_or_refused_with_a_4xx(payload, content_type):
    body = json.dumps(payload).encode()
    try:
        query = parse_invocations(body, content_type, LIMITS, n_topics=21)
    except RequestError as exc:
        assert 400 <= exc.status < 500 and "\n" not in str(exc)
        return
    assert all(isinstance(t, str) for t in query.texts)


@pytest.fixture(scope="module")
def predictor():
    from policy_topics.models.pipeline import build_pipeline
    from policy_topics.models.predictor import TopicPredictor

    frame = pd.read_csv(Path(__file__).resolve().parents[2] / "data" / "demo" / "cap_demo.csv")
    pipeline = build_pipeline(load_group("features", "word_char"), load_group("model", "linearsvc"), smallest_topic=20)
    return TopicPredictor(pipeline.fit(frame["text"].tolist(), frame["major"].to_numpy()))


@FUZZ
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=300), min_size=1, max_size=5))
def test_the_predictor_answers_every_unicode_text_including_control_characters(predictor, texts):
    records = predictor.predict_records(texts, top_k=2, explain=2)
    assert len(records) == len(texts)
    for text, record in zip(texts, records, strict=True):
        assert record["status"] == ("empty" if not text.strip() else record["status"])
        assert record["status"] in ("coded", "uncertain", "empty")


def test_a_one_megabyte_text_is_answered(predictor):
    text = ("The agency shall report on rural broadband grants. \x00\x1b\u202e" * 20_000)[:1_000_000]
    assert predictor.predict_records([text])[0]["status"] in ("coded", "uncertain")
