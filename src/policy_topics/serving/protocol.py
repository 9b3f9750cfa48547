"""What the model server reads from a request body: the project's own ``/predict`` JSON, and MLflow's
scoring protocol on ``/invocations`` (``dataframe_split``, ``dataframe_records``, ``inputs``,
``instances``, and CSV), so a client written for ``mlflow models serve`` works unchanged.

Every problem is a :class:`~policy_topics.errors.RequestError` with its status and a one-line message.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from policy_topics.errors import RequestError
from policy_topics.serving.segments import SEGMENTS

SCHEMA = ('{"texts": [string, ...], "top_k": int >= 1 (optional), "explain": int >= 0 (optional), '
          '"threshold": number in [0, 1] (optional), "segment": "paragraphs" (optional)}')
MLFLOW_SCHEMA = ('a JSON object with one of "dataframe_split" ({"columns": ["text"], "data": [[string], ...]}), '
                 '"dataframe_records" ([{"text": string}, ...]), "inputs" or "instances" ([string, ...]), '
                 'and optionally "params" ({"top_k", "explain", "threshold"}); or a CSV body (Content-Type: '
                 'text/csv) with a "text" column')
_PARAMS = ("top_k", "explain", "threshold")
_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")
_NEXT_STRING = re.compile(rb'(?<!\\)"\s*,\s*"')  # the end of one JSON string and the start of the next


@dataclass(frozen=True)
class Limits:
    max_texts: int = 1000
    max_bytes: int = 1_000_000

    def too_large(self, received: bytes) -> RequestError:
        """The 413 for a body over ``max_bytes``: for a batch, split it; for one long text, its own advice."""
        if _NEXT_STRING.search(received):
            return RequestError(413, f"request body is over the limit of {self.max_bytes:,} bytes (and "
                                     f"{self.max_texts} texts); split the batch into smaller requests")
        return RequestError(413, f"this text is over the server's limit of {self.max_bytes:,} bytes per request; "
                                 "split the document into parts (e.g. its chapters) and send them as separate "
                                 "texts, code the file with `policy-topics predict --segment paragraphs` (no size "
                                 "limit), or start the server with a larger --max-bytes")


@dataclass(frozen=True)
class Query:
    """A parsed request: the texts and how to code them."""

    texts: list[str]
    top_k: int = 3
    explain: int = 0
    threshold: float | None = None
    segment: str | None = None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None


def options(payload: dict[str, Any], n_topics: int, schema: str) -> dict[str, Any]:
    """``top_k``, ``explain``, ``threshold`` and ``segment`` of a request, checked (absent ones omitted)."""
    def integer(name: str, low: int, high: int) -> int:
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RequestError(422, f"{name} must be an integer from {low} to {high}; expected {schema}")
        return value

    found: dict[str, Any] = {}
    if "top_k" in payload:
        found["top_k"] = integer("top_k", 1, n_topics)
    if "explain" in payload:
        found["explain"] = integer("explain", 0, 50)
    threshold = payload.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise RequestError(422, f"threshold must be a number from 0 to 1; expected {schema}")
        found["threshold"] = float(threshold)
    segment = payload.get("segment")
    if segment is not None:
        if segment not in SEGMENTS:
            raise RequestError(422, f"segment must be one of {', '.join(SEGMENTS)} (or left out); expected {schema}")
        found["segment"] = segment
    return found


def _checked(texts: list[Any], limits: Limits, where: str, schema: str) -> list[str]:
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise RequestError(422, f"{where}[{bad}] is {type(texts[bad]).__name__}, not a string; expected {schema}")
    if len(texts) > limits.max_texts:
        raise RequestError(413, f"{len(texts)} texts is more than the limit of {limits.max_texts} per request "
                                f"(and {limits.max_bytes:,} bytes); split the batch")
    return texts


def parse_predict(body: bytes, limits: Limits, n_topics: int) -> Query:
    """Validate a /predict body, or a RequestError (400/413/422)."""
    payload = _json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("texts"), list):
        raise RequestError(422, f"expected a JSON object {SCHEMA}")
    unknown = sorted(set(payload) - {"texts", *_PARAMS, "segment"})
    if unknown:
        raise RequestError(422, f"unknown field(s) {', '.join(unknown)}; expected {SCHEMA}")
    texts = _checked(payload["texts"], limits, "texts", SCHEMA)
    return Query(texts, **options(payload, n_topics, SCHEMA))


def _column(columns: Any, where: str) -> int:
    if not isinstance(columns, list) or "text" not in columns:
        raise RequestError(422, f"{where} has no column 'text' (columns: {columns!r}); the model reads the column "
                                f"'text'; expected {MLFLOW_SCHEMA}")
    return columns.index("text")


def _frame_texts(name: str, value: Any) -> list[Any]:
    """The ``text`` values of one of MLflow's four input formats."""
    if name == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise RequestError(422, f'dataframe_split must be {{"columns": [...], "data": [[...], ...]}}; '
                                    f"expected {MLFLOW_SCHEMA}")
        index = _column(value.get("columns"), "dataframe_split")
        rows = value["data"]
        if not all(isinstance(row, list) and len(row) > index for row in rows):
            raise RequestError(422, f"every row of dataframe_split.data must be a list with the column 'text'; "
                                    f"expected {MLFLOW_SCHEMA}")
        return [row[index] for row in rows]
    if isinstance(value, dict):  # columnar: {"text": [...]}
        if not isinstance(value.get("text"), list):
            raise RequestError(422, f"{name} has no list 'text' (fields: {sorted(value)}); expected {MLFLOW_SCHEMA}")
        return value["text"]
    if not isinstance(value, list):
        raise RequestError(422, f"{name} must be a list; expected {MLFLOW_SCHEMA}")
    if name == "dataframe_records" or any(isinstance(item, dict) for item in value):
        if not all(isinstance(item, dict) and "text" in item for item in value):
            raise RequestError(422, f"every record of {name} needs a field 'text'; expected {MLFLOW_SCHEMA}")
        return [item["text"] for item in value]
    return value


def _csv_texts(body: bytes) -> list[Any]:
    try:
        reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
        header = next(reader, None)
        if header is None:
            raise RequestError(422, "empty CSV body; send a header line with the column 'text', then one row per text")
        index = _column(header, "the CSV")
        return [row[index] if len(row) > index else "" for row in reader]
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"the CSV body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise RequestError(400, f"the CSV body cannot be read ({exc})") from None


def _quoted(names: Iterable[object]) -> str:
    """A client's field names as JSON strings, so a name holding a newline cannot break the one-line error."""
    return ", ".join(sorted(json.dumps(str(name)) for name in names))


def parse_invocations(body: bytes, content_type: str, limits: Limits, n_topics: int) -> Query:
    """Validate an /invocations body in MLflow's scoring protocol, or a RequestError (400/413/415/422)."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "text/csv":
        return Query(_checked(_csv_texts(body), limits, "rows", MLFLOW_SCHEMA))
    if mime not in ("application/json", ""):
        raise RequestError(415, f"unsupported Content-Type '{mime}' for /invocations; use application/json or "
                                "text/csv")
    payload = _json(body)
    if not isinstance(payload, dict):
        raise RequestError(400, f"expected {MLFLOW_SCHEMA}")
    given = [name for name in _FORMATS if name in payload]
    if len(given) != 1:
        found = f"fields: {_quoted(payload) or 'none'}"
        raise RequestError(400, f"expected exactly one of {', '.join(_FORMATS)} ({found}); expected {MLFLOW_SCHEMA}")
    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise RequestError(422, f"params must be an object; expected {MLFLOW_SCHEMA}")
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise RequestError(422, f"unknown param(s) {_quoted(unknown)}; the model takes {', '.join(_PARAMS)}")
    texts = _checked(_frame_texts(given[0], payload[given[0]]), limits, given[0], MLFLOW_SCHEMA)
    return Query(texts, **options(params, n_topics, MLFLOW_SCHEMA))
