"""A lean HTTP server for a policy-topics model: POST /predict, GET /health, GET /metadata.

A plain ASGI app on uvicorn (httptools, uvloop) rather than ``mlflow models serve``: no DataFrame
round trip and no schema machinery per request, so a single text is answered in about a millisecond of
model time (see README for the measured comparison). Every error is a JSON body with a status code;
no traceback ever reaches a client.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from policy_topics.errors import RequestError
from policy_topics.models.familiarity import MIN_DOCS
from policy_topics.reporting import reporter

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SCHEMA = ('{"texts": [string, ...], "top_k": int >= 1 (optional), "explain": int >= 0 (optional), '
          '"threshold": number in [0, 1] (optional)}')
_ENV = "POLICY_TOPICS_SERVE_CONFIG"


@dataclass(frozen=True)
class Limits:
    max_texts: int = 1000
    max_bytes: int = 1_000_000


def parse_request(body: bytes, limits: Limits, n_topics: int) -> tuple[list[str], int, int, float | None]:
    """Validate a /predict body: (texts, top_k, explain, threshold), or a RequestError (400/413/422)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("texts"), list):
        raise RequestError(422, f"expected a JSON object {SCHEMA}")
    unknown = sorted(set(payload) - {"texts", "top_k", "explain", "threshold"})
    if unknown:
        raise RequestError(422, f"unknown field(s) {', '.join(unknown)}; expected {SCHEMA}")
    texts = payload["texts"]
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise RequestError(422, f"texts[{bad}] is {type(texts[bad]).__name__}, not a string; expected {SCHEMA}")
    if len(texts) > limits.max_texts:
        raise RequestError(413, f"{len(texts)} texts is more than the limit of {limits.max_texts} per request "
                                f"(and {limits.max_bytes} bytes); split the batch")

    def integer(name: str, default: int, low: int, high: int) -> int:
        value = payload.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RequestError(422, f"{name} must be an integer from {low} to {high}; expected {SCHEMA}")
        return value

    top_k = integer("top_k", 3, 1, n_topics)
    explain = integer("explain", 0, 0, 50)
    threshold = payload.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                  or not 0 <= threshold <= 1):
        raise RequestError(422, f"threshold must be a number from 0 to 1; expected {SCHEMA}")
    return texts, top_k, explain, threshold


class PredictionApp:
    """The ASGI application around a loaded model."""

    def __init__(self, predictor: Any, metadata: dict[str, Any], limits: Limits) -> None:
        self.predictor = predictor
        self.metadata = {**metadata, "limits": {"max_texts": limits.max_texts, "max_bytes": limits.max_bytes}}
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        try:
            status, body = await self._route(scope, receive)
        except RequestError as exc:
            status, body = exc.status, {"error": str(exc)}
        except Exception:  # never a traceback to the client; the server log has it
            log.exception("error while answering %s %s", scope.get("method"), scope.get("path"))
            status, body = 500, {"error": "internal error; see the server log"}
        data = json.dumps(body, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        path, method = scope["path"].rstrip("/") or "/", scope["method"]
        if path in ("/health", "/ping"):
            return 200, {"status": "ok"}
        if path == "/metadata":
            return 200, self.metadata
        if path in ("/predict", "/invocations"):
            if method != "POST":
                raise RequestError(405, f"use POST for {path}")
            body = await self._read_body(receive)
            texts, top_k, explain, threshold = parse_request(body, self.limits, len(self.predictor.codes))
            predictions = self.predictor.predict_records(texts, top_k=top_k, explain=explain, threshold=threshold)
            answer: dict[str, Any] = {"model_uri": self.metadata["model_uri"], "predictions": predictions}
            tally = self.predictor.tally() if len(texts) >= MIN_DOCS else None  # (fewer: nothing to tell)
            if tally is not None:
                tally.add(texts, [p["probability"] for p in predictions], self.predictor.clean)
                unfamiliar = self.predictor.unfamiliar(tally)
                if unfamiliar:
                    answer["warning"] = unfamiliar
            return 200, answer
        raise RequestError(404, f"no such endpoint {path}; use POST /predict, GET /health or GET /metadata")

    async def _read_body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise RequestError(413, f"request body is over the limit of {self.limits.max_bytes} bytes "
                                        f"(and {self.limits.max_texts} texts); split the batch")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


def app_from_env() -> PredictionApp:
    """uvicorn factory: each worker process loads the model named in the environment."""
    from policy_topics.tracking.registry import ResolvedModel, load

    config = json.loads(os.environ[_ENV])
    resolved = ResolvedModel(config["uri"], config["run_id"], config["tracking_uri"])
    loaded = load(resolved, config["threshold"])
    return PredictionApp(loaded.predictor, loaded.metadata, Limits(config["max_texts"], config["max_bytes"]))


def serve(reference: str | None, host: str, port: int, workers: int, limits: Limits,
          threshold: float | None) -> None:
    """Resolve the model (failing fast on unknown ones), then run uvicorn."""
    import uvicorn

    from policy_topics.tracking.registry import load, resolve

    resolved = resolve(reference)
    loaded = load(resolved, threshold)  # fail before binding the port, also with several workers
    reporter().line(f"serving {resolved.loaded} (run {resolved.run_id}) on http://{host}:{port} with {workers} "
                    f"worker(s); POST /predict, GET /health, GET /metadata; {loaded.predictor.threshold_note()}")
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning", "access_log": False,
                               "http": "httptools", "loop": "uvloop"}
    if workers > 1:
        os.environ[_ENV] = json.dumps({"uri": resolved.uri, "run_id": resolved.run_id,
                                       "tracking_uri": resolved.tracking_uri, "threshold": threshold,
                                       "max_texts": limits.max_texts, "max_bytes": limits.max_bytes})
        uvicorn.run("policy_topics.serving.http:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(PredictionApp(loaded.predictor, loaded.metadata, limits), **options)
