"""The request gate: a pure ASGI layer for request ids, the body limit, API keys, metrics and one log
line; and the fast path of a plain one-lead request."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from leadscore.service.auth import ADMIN, REP, key_from_headers
from leadscore.service.one_lead import SCORE_PATH, plain_explain, score_one_lead
from leadscore.service.state import ServiceState
from leadscore.service.telemetry import access_logger

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
ADMIN_PREFIX = "/v1/admin/"
DOC_PATHS = frozenset({"/docs", "/openapi.json"})
BATCH_PATH = "/v1/score/batch"
KNOWN_PATHS = frozenset(
    {
        "/v1/score",
        "/v1/score/batch",
        "/v1/model",
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/openapi.json",
        "/v1/admin/reload",
        "/v1/admin/reload/status",
    }
)
_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# POST /v1/score with a plain query is answered here, without FastAPI's routing, dependencies and
# exception layers (a fifth of a one-lead answer's time); the same bytes as its route (tested).
FAST_SCORE = True


class Gate:
    """Request id, body limit (413), API key (401), latency metrics and one JSON log line per request."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app = app
        self.state = state
        self.log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope["path"]
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _RID.match(given) else uuid.uuid4().hex
        status = [500]
        sent_at = [0.0]  # when the response's last byte was handed to the server (0: not yet)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                sent_at[0] = time.perf_counter()

        try:
            if path == "/healthz":  # answered here: never behind scoring work, a body or a key check
                await _health(scope.get("method"), send_with_id)
                return
            refusal = self._refusal(path, headers)
            if refusal is not None:
                code, kind, detail = refusal
                self.state.metrics.errors.labels(kind=kind).inc()
                extra = [(b"www-authenticate", b"Bearer")] if code == 401 else []
                if code == 503:  # shed before the body is read, and close: nothing left to drain
                    extra = [(b"retry-after", b"1"), (b"connection", b"close")]
                await _reply(send_with_id, code, {"detail": detail}, extra)
                return
            body = await self._read_body(receive, headers)
            if body is None:
                self.state.metrics.errors.labels(kind="too_large").inc()
                await _reply(
                    send_with_id, 413, {"detail": f"request body over {self.state.max_body_bytes} bytes"}
                )
                return
            if path == SCORE_PATH and await self._fast_score(scope, body, rid, send_with_id):
                return
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            scope.setdefault("state", {})["request_id"] = rid  # the score log records it
            await self.app(scope, replay, send_with_id)
        except Exception:
            self.state.metrics.errors.labels(kind="internal").inc()
            self.log.exception("internal error", extra={"fields": {"request_id": rid, "path": path}})
            raise
        finally:
            # the latency the CRM sees: up to the answer's last byte, not the work done after it
            # (the score log's row, webhooks: docs/performance.md)
            elapsed = (sent_at[0] or time.perf_counter()) - start
            label = path if path in KNOWN_PATHS else "other"
            metrics = self.state.metrics
            metrics.requests.labels(path=label, status=str(status[0])).inc()
            metrics.latency.labels(path=label).observe(elapsed)
            loaded = self.state.loaded
            self.log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": rid,
                        "method": scope.get("method"),
                        "path": label,
                        "status": status[0],
                        "latency_ms": round(elapsed * 1000, 3),
                        "model_version": loaded.model_version if loaded else None,
                    }
                },
            )

    async def _fast_score(self, scope: Scope, body: bytes, rid: str, send: Send) -> bool:
        """A plain ``POST /v1/score`` answered here (True); anything else is left to FastAPI (its
        query checks and error bodies, its 405, its 503 without a model)."""
        if not FAST_SCORE or scope.get("method") != "POST":
            return False
        explain = plain_explain(scope.get("query_string", b""))
        loaded = self.state.loaded
        if explain is None or loaded is None:
            return False
        answer = await score_one_lead(self.state, loaded, body, explain, rid)
        await _send_json(send, answer.status, answer.body)
        answer.after()  # the score log's row and the metrics, once the answer is on its way
        return True

    def _refusal(self, path: str, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        """Why a request is refused before its body is read (status, error kind, detail), or None."""
        if path in DOC_PATHS and not self.state.docs:
            return 404, "not_found", "API documentation is disabled on this server (LEADSCORE_DOCS=off)"
        if path in OPEN_PATHS or is_page_path(path):  # pages check their own session cookie
            return None
        if self.state.insecure:
            return self._busy(path)
        role = self.state.keys.role(key_from_headers(headers))
        if role is None:
            return 401, "unauthorized", "missing or invalid API key (send X-API-Key or Authorization: Bearer)"
        if path.startswith(ADMIN_PREFIX) and role != ADMIN:
            return 403, "forbidden", "this key may score but not administer (use an admin key)"
        if role == REP and not is_decision_path(path):
            return 403, "forbidden", "a rep's key records decisions; scoring needs the CRM's key"
        return self._busy(path)

    def _busy(self, path: str) -> tuple[int, str, str] | None:
        if path == BATCH_PATH and self.state.batches_in_flight >= self.state.max_batches:
            return 503, "busy", f"busy: {self.state.max_batches} batches are being scored; retry shortly"
        return None

    async def _read_body(self, receive: Receive, headers: dict[bytes, bytes]) -> bytes | None:
        limit = self.state.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _health(method: str | None, send: Send) -> None:
    """``/healthz``: 200 to GET and HEAD, 405 to anything else."""
    if method == "GET":
        await _reply(send, 200, {"status": "ok"})
    elif method == "HEAD":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _reply(send, 405, {"detail": "Method Not Allowed"}, [(b"allow", b"GET, HEAD")])


async def _reply(
    send: Send, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send_json(send, status, orjson.dumps(payload), extra)


async def _send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON response with the headers Starlette's ``Response`` gives it (length, then type)."""
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def is_decision_path(path: str) -> bool:
    """``/v1/leads/{id}/decision``: what a rep's key may call."""
    return path.startswith("/v1/leads/") and path.endswith("/decision")


def is_page_path(path: str) -> bool:
    """Sales' pages (``/app``, ``/app/...``): signed in with a session cookie, not an API key."""
    return path == "/app" or path.startswith("/app/")
