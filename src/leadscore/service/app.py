"""The service's application factory: settings, keys, the loaded model, routes, the gate and OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from leadscore._version import __version__
from leadscore.config import Settings, get_settings
from leadscore.errors import UserError
from leadscore.service.account_log import AccountLog
from leadscore.service.auth import KeyRing
from leadscore.service.batches import BatchScorers
from leadscore.service.docs import render_docs
from leadscore.service.forkserver import scorer_context
from leadscore.service.gate import OPEN_PATHS, Gate
from leadscore.service.leads import request_schema
from leadscore.service.responses import JSON
from leadscore.service.routes import router
from leadscore.service.scorer_process import ScorerConfig
from leadscore.service.state import ServiceState, load_accounts_model, load_model, reload_state
from leadscore.service.telemetry import access_logger
from leadscore.service.webhooks import Deliverer, WebhookConfig
from leadscore.service.workers import POLL_SECONDS, ReloadBoard
from leadscore.store.writer import ScoreWriter

SWITCH_INTERVAL = 0.001  # seconds (Python's default is 0.005)


def _keys(settings: Settings, insecure: bool) -> KeyRing:
    """The API keys, refusing to start without one (unless insecure) or with unknown docs settings."""
    keys = KeyRing.from_settings(
        settings.api_keys, settings.api_key_file, settings.admin_keys, insecure=insecure
    )
    if settings.docs not in {"key", "off"}:
        raise UserError(f"LEADSCORE_DOCS: '{settings.docs}' is not 'key' or 'off'")
    if keys.empty and not insecure:
        raise UserError(
            "no API key configured: set LEADSCORE_API_KEYS (comma-separated) or LEADSCORE_API_KEY_FILE "
            "(SHA-256 hashes), or start with --insecure-dev for local development only"
        )
    return keys


def _new_state(settings: Settings, keys: KeyRing, insecure: bool, source: str) -> ServiceState:
    """The service's state from its settings (the model is loaded by the caller)."""
    log = (
        # the log's writer process comes from the batch scorers' fork server (the store's code imported)
        ScoreWriter(settings.database_url, settings.score_log_buffer, context=scorer_context())
        if settings.log_scores
        else None
    )
    return ServiceState(
        keys=keys,
        insecure=insecure,
        max_batch=settings.max_batch,
        max_body_bytes=settings.max_body_bytes,
        model_source=source,
        workers=settings.workers,
        docs=settings.docs != "off",
        max_batches=max(1, settings.max_batches),
        board=ReloadBoard(settings.reload_dir) if settings.workers > 1 and settings.reload_dir else None,
        score_log=log,
        database_url=settings.database_url,
        trend_threshold=settings.trend_threshold,
        scorers=BatchScorers(
            max(1, settings.max_batches),
            ScorerConfig(max_batch=settings.max_batch, trend_threshold=settings.trend_threshold),
            timeout=settings.batch_timeout,
        ),
    )


def _webhooks(settings: Settings) -> Deliverer | None:
    """The alerts' deliverer when ``LEADSCORE_WEBHOOKS`` names URLs (they need the score log: an MQL
    event is a lead crossing the cutoff since its previous logged answer)."""
    config = WebhookConfig.from_settings(
        settings.webhooks,
        settings.webhook_secret,
        settings.webhook_format,
        settings.public_url,
        settings.webhook_max_backoff,
        settings.webhook_give_up_hours,
    )
    if config is None:
        return None
    if not settings.log_scores:
        raise UserError(
            "LEADSCORE_WEBHOOKS needs the score log (LEADSCORE_LOG_SCORES=true): an MQL alert is a lead "
            "crossing the cutoff since its previous answer"
        )
    return Deliverer(settings.database_url, config)


def create_app(
    model_source: str | None = None,
    *,
    insecure: bool | None = None,
    settings: Settings | None = None,
    accounts_model: str | None = None,
) -> FastAPI:
    """Build the service: refuse to start without API keys (unless insecure) or without a usable model."""
    settings = settings or get_settings()
    insecure = settings.insecure_dev if insecure is None else insecure
    source = model_source or settings.model
    state = _new_state(settings, _keys(settings, insecure), insecure, source)
    state.generation = state.board.generation() if state.board else 0
    # Batches are scored in processes of their own; a shorter GIL switch interval still lets the event
    # loop in sooner while a thread of this process waits on one or reads the score log.
    sys.setswitchinterval(SWITCH_INTERVAL)
    state.loaded = load_model(source)
    accounts_source = accounts_model or settings.accounts_model
    if accounts_source:
        state.accounts = load_accounts_model(accounts_source)
        if settings.log_scores:  # the account queue page reads them
            state.account_log = AccountLog(settings.database_url)
            state.account_log.start()
    if state.score_log is not None:
        state.score_log.start()
    state.webhooks = _webhooks(settings)
    if state.webhooks is not None:
        state.webhooks.start()
    if state.board is not None:
        state.board.report(model_version=state.loaded.model_version, generation=state.generation)

    app = FastAPI(
        lifespan=_lifespan(state, settings),
        title="leadscore",
        version=__version__,
        summary="Calibrated P(SQL), MQL flag, grade and reasons for B2B leads.",
        default_response_class=JSON,
        docs_url=None,
        redoc_url=None,
    )
    app.state.leadscore = state
    app.include_router(router)

    _answer_invalid_requests(app, state)
    _document(app, state)
    app.add_middleware(Gate, state=state)
    return app


def _lifespan(
    state: ServiceState, settings: Settings
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What runs around serving: SIGHUP reloads, following other workers' reloads, warming the batch
    scorers; then stopping the scorers and writing the queued score log."""

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
        watcher = loop.create_task(_follow_reloads(state)) if state.board is not None else None
        # Batch scorers start while the server already answers (or with the first batch).
        warming = _start_warming(loop, state) if settings.warm_scorers else None
        yield
        for task in (watcher, warming):
            if task is not None:
                task.cancel()
        await _shut_down(state)

    return lifespan


def _answer_invalid_requests(app: FastAPI, state: ServiceState) -> None:
    """A request FastAPI cannot validate: 422 naming the field, counted."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSON:
        first = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", []) if p not in ("body", "query"))
        state.metrics.errors.labels(kind="invalid_request").inc()
        return JSON({"detail": f"field '{where}': {first.get('msg')}", "field": where}, status_code=422)


def _document(app: FastAPI, state: ServiceState) -> None:
    """The OpenAPI schema with the loaded model's lead fields and the keys it needs, and /docs."""

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
            for path in OPEN_PATHS:  # health and readiness need no key: say so per operation
                for operation in schema.get("paths", {}).get(path, {}).values():
                    operation["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(render_docs(openapi()))


async def _follow_reloads(state: ServiceState) -> None:
    """Several workers: reload when another worker has asked for it (a newer generation on the board)."""
    board = state.board
    assert board is not None
    log = access_logger()
    while True:
        await asyncio.sleep(POLL_SECONDS)
        wanted = board.generation()
        if wanted <= state.generation:
            continue
        try:
            before, after = await reload_state(state, wanted)
            log.info("model reloaded", extra={"fields": {"model_version": after, "previous_version": before}})
        except UserError as exc:
            state.generation = wanted  # reported on the board; do not retry in a loop
            log.error("model reload failed", extra={"fields": {"error": str(exc)}})


async def _shut_down(state: ServiceState) -> None:
    """Stop the batch scorers and write what the score log has queued before the process goes."""
    if state.scorers is not None:
        await state.scorers.close()
    if state.score_log is not None:
        await asyncio.to_thread(state.score_log.close, 10.0)
    if state.webhooks is not None:
        await asyncio.to_thread(state.webhooks.close, 10.0)
    if state.account_log is not None:
        await asyncio.to_thread(state.account_log.close, 10.0)


def _start_warming(loop: asyncio.AbstractEventLoop, state: ServiceState) -> asyncio.Task[None] | None:
    """Start the batch scorers with the model in the background; /readyz waits for them (a batch
    sent meanwhile would wait for a scorer to start and load the model)."""
    if state.scorers is None or state.loaded is None:
        return None
    state.scorers_warming = True
    return loop.create_task(_warm(state))


async def _warm(state: ServiceState) -> None:
    """Start the batch scorer processes with the model, so the first batches do not wait for them."""
    if state.scorers is None or state.loaded is None:
        return
    try:
        await state.scorers.warm(state.loaded)
    except Exception as exc:  # a batch will start its scorer itself, and report a failure then
        access_logger().warning("batch scorers not started", extra={"fields": {"error": str(exc)}})
    finally:
        state.scorers_warming = False


async def _reload_logged(state: ServiceState) -> None:
    log = access_logger()
    try:
        before, after = await reload_state(state)
        log.info("model reloaded", extra={"fields": {"model_version": after, "previous_version": before}})
    except UserError as exc:
        log.error("model reload failed", extra={"fields": {"error": str(exc)}})


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several workers: everything from LEADSCORE_* settings."""
    return create_app()
