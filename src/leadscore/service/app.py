"""The service's application factory and its request gate (id, size limit, auth, metrics, logs)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import ORJSONResponse

from leadscore import __version__
from leadscore.bundle import ModelBundle
from leadscore.config import Settings, UserError, get_settings
from leadscore.service.auth import KeyRing, key_from_headers
from leadscore.service.deps import Loaded, ServiceState
from leadscore.service.leads import LeadChecker, request_schema
from leadscore.service.routes import router
from leadscore.service.telemetry import access_logger

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
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
    }
)
_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def load_model(source: str) -> Loaded:
    """Load a bundle for serving (single-threaded scoring per request; one worker per core)."""
    bundle = ModelBundle.load(source)
    bundle.num_threads = 1
    loaded = Loaded(bundle=bundle, checker=LeadChecker(bundle), source=source)
    # The model lives until the next reload: keep its objects out of the garbage collector's full
    # passes, which otherwise walk them all in the middle of a request. Unfreezing first lets a
    # model replaced by an earlier reload be collected.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return loaded


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

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            if (
                path not in OPEN_PATHS
                and not self.state.insecure
                and not self.state.keys.accepts(key_from_headers(headers))
            ):
                self.state.metrics.errors.labels(kind="unauthorized").inc()
                await _reply(
                    send_with_id,
                    401,
                    {"detail": "missing or invalid API key (send X-API-Key or Authorization: Bearer)"},
                    [(b"www-authenticate", b"Bearer")],
                )
                return
            body = await self._read_body(receive, headers)
            if body is None:
                self.state.metrics.errors.labels(kind="too_large").inc()
                await _reply(
                    send_with_id, 413, {"detail": f"request body over {self.state.max_body_bytes} bytes"}
                )
                return
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_with_id)
        except Exception:
            self.state.metrics.errors.labels(kind="internal").inc()
            self.log.exception("internal error", extra={"fields": {"request_id": rid, "path": path}})
            raise
        finally:
            elapsed = time.perf_counter() - start
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


async def _reply(
    send: Send, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps(payload)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(
    model_source: str | None = None, *, insecure: bool | None = None, settings: Settings | None = None
) -> FastAPI:
    """Build the service: refuse to start without API keys (unless insecure) or without a usable model."""
    settings = settings or get_settings()
    keys = KeyRing.from_settings(settings.api_keys, settings.api_key_file)
    insecure = settings.insecure_dev if insecure is None else insecure
    if keys.empty and not insecure:
        raise UserError(
            "no API key configured: set LEADSCORE_API_KEYS (comma-separated) or LEADSCORE_API_KEY_FILE "
            "(SHA-256 hashes), or start with --insecure-dev for local development only"
        )
    source = model_source or settings.model
    state = ServiceState(
        keys=keys,
        insecure=insecure,
        max_batch=settings.max_batch,
        max_body_bytes=settings.max_body_bytes,
        model_source=source,
        workers=settings.workers,
    )
    state.loaded = load_model(source)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # SIGHUP reloads the model source (e.g. after `leadscore promote`), like the reload endpoint.
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[Any]] = set()

        def on_hup() -> None:
            task = loop.create_task(_reload_logged(state))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        try:
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no SIGHUP
            pass
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="leadscore",
        version=__version__,
        summary="Calibrated P(SQL), MQL flag, grade and reasons for B2B leads.",
        default_response_class=ORJSONResponse,
    )
    app.state.leadscore = state
    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> ORJSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", []) if p not in ("body", "query"))
        state.metrics.errors.labels(kind="invalid_request").inc()
        return ORJSONResponse(
            {"detail": f"field '{where}': {first.get('msg')}", "field": where}, status_code=422
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            loaded = state.loaded
            lead = request_schema(loaded.bundle) if loaded else {"type": "object"}
            schema.setdefault("components", {}).setdefault("schemas", {})["LeadIn"] = lead
            schema["components"]["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            }
            schema["security"] = [{"ApiKey": []}, {"Bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Gate, state=state)
    return app


async def _reload_logged(state: ServiceState) -> None:
    from leadscore.service.routes import reload_state

    log = access_logger()
    try:
        before, after = await reload_state(state)
        log.info("model reloaded", extra={"fields": {"model_version": after, "previous_version": before}})
    except UserError as exc:
        log.error("model reload failed", extra={"fields": {"error": str(exc)}})


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several workers: everything from LEADSCORE_* settings."""
    return create_app()
