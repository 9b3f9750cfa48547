"""The coder page: a static page at ``/`` (HTML, CSS and JavaScript shipped in the package, nothing fetched
from elsewhere, so it works offline) and ``POST /code``, which codes an uploaded CSV, TSV or text file
and answers JSON for the page or the coded CSV that ``policy-topics predict`` writes for the same file.

``POST /code?name=FILE.csv&column=text&...`` takes the file's bytes as the body. Query parameters: ``name``
(its suffix says the format), ``column`` (CSV text column, default ``text``), ``id_column``, ``encoding``
(default ``utf-8``), ``top_k``, ``explain``, ``threshold``, ``segment`` (as for ``/predict``) and
``format`` (``json``, the default, or ``csv``).
"""

from __future__ import annotations

import io
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from policy_topics.errors import RequestError
from policy_topics.serving.batch import RecordWriter
from policy_topics.serving.documents import Reading
from policy_topics.serving.protocol import Query, options
from policy_topics.serving.uploads import read_upload

UPLOAD_SCHEMA = ("POST /code?name=FILE.csv|FILE.txt[&column=text][&encoding=utf-8][&top_k=N][&explain=N]"
                 "[&threshold=P][&segment=paragraphs][&format=json|csv] with the file as the body")
_ASSETS = {"/": ("coder.html", b"text/html; charset=utf-8"),
           "/static/coder.js": ("coder.js", b"text/javascript; charset=utf-8"),
           "/static/coder.css": ("coder.css", b"text/css; charset=utf-8")}
_PAGE_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                 b"img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-cache"),
]


@cache
def _read(name: str) -> bytes:
    return resources.files("policy_topics.serving").joinpath("static", name).read_bytes()


def asset(path: str) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """Body, content type and headers of the page or one of its files."""
    if path not in _ASSETS:
        raise RequestError(404, f"no such file {path}; the coder page is at /")
    name, content_type = _ASSETS[path]
    return _read(name), content_type, _PAGE_HEADERS


def _typed(params: dict[str, str]) -> dict[str, Any]:
    """Query-string options as JSON would give them (a value that is no number stays text, and is refused)."""
    typed: dict[str, Any] = {}
    for name, convert in (("top_k", int), ("explain", int), ("threshold", float)):
        if name in params:
            try:
                typed[name] = convert(params[name])
            except ValueError:
                typed[name] = params[name]
    if params.get("segment"):
        typed["segment"] = params["segment"]
    return typed


def code_upload(app: Any, params: dict[str, str], body: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]],
                                                                        list[str]]:
    """Code an uploaded file for ``app`` (a :class:`~policy_topics.serving.http.PredictionApp`): the answer's
    body, content type, headers, and the texts coded."""
    unknown = sorted(set(params) - {"name", "column", "id_column", "encoding", "top_k", "explain", "threshold",
                                    "segment", "format"})
    if unknown:
        raise RequestError(422, f"unknown parameter(s) {', '.join(unknown)}; expected {UPLOAD_SCHEMA}")
    fmt = params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise RequestError(422, f"format must be json or csv; expected {UPLOAD_SCHEMA}")
    name = params.get("name") or "upload.txt"
    reading = Reading(params.get("column") or "text", params.get("id_column") or None, None,
                      params.get("encoding") or "utf-8")
    found = options(_typed(params), app.n_topics, UPLOAD_SCHEMA)  # checked before the file is read
    documents = read_upload(name, body, reading, app.limits)
    texts = [d.text for d in documents]
    records, unfamiliar = app.code(Query(texts, **found))
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = RecordWriter(out, "csv")
        for document, record in zip(documents, records, strict=True):
            writer.write(document, record)
        writer.close()
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rsplit(".", 1)[0])[:80] or "upload"
        disposition = f'attachment; filename="{stem}-coded.csv"'.encode()
        return out.getvalue().encode(), b"text/csv; charset=utf-8", [(b"content-disposition", disposition)], texts
    meta = app.metadata
    answer: dict[str, Any] = {
        "model_uri": meta["model_uri"], "loaded": meta.get("loaded"), "threshold": app.predictor.threshold
        if found.get("threshold") is None else found["threshold"],
        "documents": [{"id": d.id, "text": d.text, **r} for d, r in zip(documents, records, strict=True)],
    }
    if unfamiliar:
        answer["warning"] = unfamiliar
    return json.dumps(answer, ensure_ascii=False).encode(), b"application/json", [], texts
