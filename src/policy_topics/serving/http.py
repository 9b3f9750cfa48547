"""A lean HTTP server for a policy-topics model: the coder page at ``/``, ``POST /predict``, MLflow's
scoring protocol on ``POST /invocations``, file uploads on ``POST /code``, ``GET /health``, ``GET /metadata``.

A plain ASGI app on uvicorn (httptools, uvloop) rather than ``mlflow models serve``: no DataFrame
round trip and no schema machinery per request, so a single text is answered in well under a millisecond
of model time (see the serving benchmark). Every error is a one-line JSON body with a status code; no
traceback ever reaches a client. With access tokens (:mod:`policy_topics.serving.auth`), every path but
``/health`` answers 401 without one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from policy_topics.errors import RequestError
from policy_topics.models.familiarity import MIN_DOCS
from policy_topics.serving import page
from policy_topics.serving.auth import AccessLog, Tokens, check_exposure, env_tokens
from policy_topics.serving.protocol import Limits, Query, parse_invocations, parse_predict
from policy_topics.serving.segments import add_paragraphs

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_ENV = "POLICY_TOPICS_SERVE_CONFIG"
_JSON = b"application/json"
_UNAUTHORIZED = (b'{"error": "missing or invalid access token"}', _JSON,
                 [(b"www-authenticate", b'Bearer realm="policy-topics"'),
                  (b"www-authenticate", b'Basic realm="policy-topics", charset="UTF-8"')])
_ENDPOINTS = "GET / (the coder page), POST /predict, POST /invocations, POST /code, GET /health or GET /metadata"


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    texts: list[str] | None = None  # the request's texts, for the access log


def json_reply(status: int, payload: Any, texts: list[str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload, ensure_ascii=False).encode(), texts=texts)


@dataclass(frozen=True)
class Access:
    """Who may ask, and what is logged: tokens (None: anyone) and the access log (None: none)."""

    tokens: Tokens | None = None
    log: AccessLog | None = None


class PredictionApp:
    """The ASGI application around a loaded model."""

    def __init__(self, predictor: Any, metadata: dict[str, Any], limits: Limits, access: Access = Access()) -> None:
        self.predictor = predictor
        self.metadata = {**metadata, "limits": {"max_texts": limits.max_texts, "max_bytes": limits.max_bytes},
                         "access_tokens": access.tokens is not None}
        self.limits = limits
        self.tokens = access.tokens
        self.access_log = access.log
        self.n_topics = len(predictor.codes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.access_log is not None:
                        self.access_log.flush()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        start = time.perf_counter()
        headers = dict(scope["headers"])  # (a repeated header: its last value)
        path = scope["path"].rstrip("/") or "/"
        try:
            if self.tokens is not None and path != "/health" and not self.tokens.allows(headers.get(b"authorization")):
                reply = Reply(401, *_UNAUTHORIZED)
            else:
                reply = await self._route(scope, path, headers, receive)
        except RequestError as exc:
            reply = json_reply(exc.status, {"error": str(exc)})
        except Exception:  # never a traceback to the client; the server log has it
            log.exception("error while answering %s %s", scope.get("method"), scope.get("path"))
            reply = json_reply(500, {"error": "internal error; see the server log"})
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(b"content-type", reply.content_type),
                                (b"content-length", str(len(reply.body)).encode()), *reply.headers]})
        await send({"type": "http.response.body", "body": reply.body})
        if self.access_log is not None:
            self.access_log.write(scope["method"], scope["path"], reply.status,
                                  None if reply.texts is None else len(reply.texts), time.perf_counter() - start,
                                  scope.get("client"), reply.texts)

    async def _route(self, scope: Scope, path: str, headers: dict[bytes, bytes], receive: Receive) -> Reply:
        method = scope["method"]
        if path in ("/health", "/ping"):
            return json_reply(200, {"status": "ok"})
        if path == "/metadata":
            return json_reply(200, self.metadata)
        if path == "/" or path.startswith("/static/"):
            if method not in ("GET", "HEAD"):
                raise RequestError(405, f"use GET for {path}")
            return Reply(200, *page.asset(path))
        if path not in ("/predict", "/invocations", "/code"):
            raise RequestError(404, f"no such endpoint {path}; use {_ENDPOINTS}")
        if method != "POST":
            raise RequestError(405, f"use POST for {path}")
        body = await self._read_body(receive)
        if path == "/code":
            params = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
            return Reply(200, *page.code_upload(self, params, body))
        if path == "/invocations":
            query = parse_invocations(body, headers.get(b"content-type", b"").decode("latin-1"), self.limits,
                                      self.n_topics)
            records, _ = self.code(query)
            for record in records:  # the pyfunc model's output columns, as `mlflow models serve` answers
                record.setdefault("explanation", [])
            return json_reply(200, {"predictions": records}, query.texts)
        query = parse_predict(body, self.limits, self.n_topics)
        records, unfamiliar = self.code(query)
        answer: dict[str, Any] = {"model_uri": self.metadata["model_uri"], "predictions": records}
        if unfamiliar:
            answer["warning"] = unfamiliar
        return json_reply(200, answer, query.texts)

    def code(self, query: Query) -> tuple[list[dict[str, Any]], str | None]:
        """The records of ``query``'s texts (with their paragraphs when asked), and the warning for texts
        unlike the training data (counted for requests of 20 texts or more only: fewer tell nothing)."""
        texts = query.texts
        records = self.predictor.predict_records(texts, top_k=query.top_k, explain=query.explain,
                                                 threshold=query.threshold)
        if query.segment == "paragraphs":
            add_paragraphs(self.predictor, texts, records, query.top_k, query.explain, query.threshold)
        tally = self.predictor.tally() if len(texts) >= MIN_DOCS else None
        if tally is None:
            return records, None
        tally.add(texts, [r["probability"] for r in records], self.predictor.clean)
        return records, self.predictor.unfamiliar(tally)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise self.limits.too_large(b"".join(chunks) + chunk)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


def _access(config: dict[str, Any]) -> Access:
    tokens = Tokens(Path(config["token_file"]).expanduser() if config.get("token_file") else None, env_tokens())
    target = config.get("access_log")
    return Access(tokens if tokens.enabled else None, AccessLog(target, config.get("log_texts", False))
                  if target else None)


def app_from_env() -> PredictionApp:
    """uvicorn factory: each worker process loads the model named in the environment."""
    from policy_topics.tracking.registry import ResolvedModel, load

    config = json.loads(os.environ[_ENV])
    resolved = ResolvedModel(config["uri"], config["run_id"], config["tracking_uri"], config.get("version"))
    loaded = load(resolved, config["threshold"])
    return PredictionApp(loaded.predictor, loaded.metadata, Limits(config["max_texts"], config["max_bytes"]),
                         _access(config))


def serve(reference: str | None, host: str, port: int, workers: int, limits: Limits, threshold: float | None,
          access: dict[str, Any] | None = None) -> None:
    """Resolve the model (failing fast on unknown ones), then run uvicorn. ``access``: ``token_file``,
    ``access_log`` (a file or ``-``), ``log_texts`` and ``open_access`` (serve a non-loopback address without
    tokens, which is otherwise refused), as the command line gives them."""
    import uvicorn

    from policy_topics.reporting import reporter
    from policy_topics.tracking.registry import load, resolve

    access = dict(access or {})
    open_access = access.pop("open_access", False)
    checked = _access(access)  # a missing or empty token file fails here, before the model loads
    check_exposure(host, port, checked.tokens, open_access)
    resolved = resolve(reference)
    loaded = load(resolved, threshold)  # fail before binding the port, also with several workers
    shown = f"[{host}]" if ":" in host else host
    guard = f"{checked.tokens.count} access token(s)" if checked.tokens else "no access tokens"
    reporter().line(f"serving {resolved.loaded} (run {resolved.run_id}) on http://{shown}:{port} with {workers} "
                    f"worker(s), {guard}; the coder page at /, POST /predict, POST /invocations (MLflow's "
                    f"protocol), GET /metadata; {loaded.predictor.threshold_note()}")
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning", "access_log": False,
                               "http": "httptools", "loop": "uvloop"}
    if workers > 1:
        os.environ[_ENV] = json.dumps({"uri": resolved.uri, "run_id": resolved.run_id, "version": resolved.version,
                                       "tracking_uri": resolved.tracking_uri, "threshold": threshold,
                                       "max_texts": limits.max_texts, "max_bytes": limits.max_bytes, **access})
        uvicorn.run("policy_topics.serving.http:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(PredictionApp(loaded.predictor, loaded.metadata, limits, checked), **options)
