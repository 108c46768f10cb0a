"""The API's routes: score one lead, score a batch, describe the model, health and metrics."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.background import BackgroundTask

from leadscore.errors import UserError
from leadscore.scoring.account_request import (
    AccountRequestError,
    account_answer,
)
from leadscore.scoring.segment_keys import segment_rows
from leadscore.service.auth import key_from_headers
from leadscore.service.batch_body import Batch, Refused, parse_body
from leadscore.service.batches import ScorerFailed
from leadscore.service.decisions import DecisionError, checked_decision, record_decision
from leadscore.service.deps import ModelDep, StateDep
from leadscore.service.loaded import Loaded
from leadscore.service.one_lead import EXPLAIN_DEFAULT, EXPLAIN_MAX, SCORE_PATH, hand_over, score_one_lead
from leadscore.service.responses import JSON
from leadscore.service.schemas import (
    AccountScoreOut,
    BatchScoreOut,
    DecisionOut,
    ErrorOut,
    ModelOut,
    ReloadOut,
    ReloadStatusOut,
    ScoreOut,
    WebhooksOut,
)
from leadscore.service.scorer_process import Job
from leadscore.service.state import ServiceState, reload_state
from leadscore.service.telemetry import access_logger
from leadscore.spec import ANY
from leadscore.store.db import open_store
from leadscore.store.webhooks import webhook_summary

router = APIRouter()
LEAD_BODY = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LeadIn"}}},
    "required": True,
}
BATCH_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["leads"],
                "properties": {"leads": {"type": "array", "items": {"$ref": "#/components/schemas/LeadIn"}}},
            }
        }
    },
    "required": True,
}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or invalid API key"},
    413: {"model": ErrorOut, "description": "request body too large"},
    422: {
        "model": ErrorOut,
        "description": "a field has a wrong type (impossible values are missing values)",
    },
}
BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "all batch slots busy: retry after the Retry-After seconds"}
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS[401],
    403: {"model": ErrorOut, "description": "a scoring key: administration needs an admin key"},
}
Explain = Query(
    EXPLAIN_DEFAULT,
    ge=0,
    le=EXPLAIN_MAX,
    description="Top positive and top negative reasons to return (each).",
)


def _parse(body: bytes) -> Any:
    try:
        return parse_body(body)
    except Refused as exc:
        raise HTTPException(status_code=exc.status, detail=exc.detail) from None


@router.post(SCORE_PATH, response_model=ScoreOut, responses=ERRORS, openapi_extra={"requestBody": LEAD_BODY})
async def score_one(request: Request, model: ModelDep, state: StateDep, explain: int = Explain) -> Response:
    """Score one lead: calibrated P(SQL), MQL flag, grade, reasons and the response time to aim for."""
    answer = await score_one_lead(state, model, await request.body(), explain, _request_id(request))
    return Response(
        answer.body, status_code=answer.status, media_type="application/json", background=later(answer.after)
    )


ACCOUNT_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["account"],
                "properties": {
                    "account": {"type": "object", "description": "The account's id and fit fields."},
                    "leads": {
                        "type": "array",
                        "items": {"type": "object", "description": "A lead's fields and its 'events'."},
                    },
                    "as_of": {"type": "string", "description": "Score as of this time (default now)."},
                },
            }
        }
    },
    "required": True,
}


@router.post(
    "/v1/accounts/score",
    response_model=AccountScoreOut,
    responses={**ERRORS, 404: {"model": ErrorOut, "description": "no account model is loaded"}},
    openapi_extra={"requestBody": ACCOUNT_BODY},
)
async def score_account(request: Request, state: StateDep, explain: int = Explain) -> Response:
    """Score one account from its fields and its leads (each with its recent events): calibrated
    P(opportunity), qualified or not, grade, reasons and its buying group."""
    bundle = state.accounts
    if bundle is None:
        return JSON({"detail": "no account model is loaded (serve --accounts-model)"}, status_code=404)
    body = _parse(await request.body())
    try:
        answer = account_answer(bundle, body, explain)
    except AccountRequestError as exc:
        state.metrics.errors.labels(kind="invalid_lead").inc()
        return JSON({"detail": str(exc), "field": exc.field}, status_code=422)
    if state.account_log is not None:
        state.account_log.add(answer)
    return JSON(answer)


@router.post(
    "/v1/score/batch",
    response_model=BatchScoreOut,
    responses={
        **ERRORS,
        **BUSY,
        504: {"model": ErrorOut, "description": "the batch overran LEADSCORE_BATCH_TIMEOUT"},
    },
    openapi_extra={"requestBody": BATCH_BODY},
)
async def score_batch(request: Request, model: ModelDep, state: StateDep, explain: int = Explain) -> Response:
    """Score up to the configured number of leads; a bad lead is reported by its index, the rest are scored."""
    if not state.try_start_batch():  # saturated: say so at once instead of queueing without limit
        state.metrics.errors.labels(kind="busy").inc()
        return JSON(
            {"detail": f"busy: {state.max_batches} batches are being scored; retry shortly"},
            status_code=503,
            headers={"Retry-After": "1", "Connection": "close"},
        )
    try:
        body = await request.body()
        batch = await _score_elsewhere(state, model, body, explain, _request_id(request))
    except Refused as exc:
        return JSON({"detail": exc.detail}, status_code=exc.status)
    except ScorerFailed as exc:
        state.metrics.errors.labels(kind="internal" if exc.status == 500 else "timeout").inc()
        access_logger().error("batch scoring failed", extra={"fields": {"error": exc.detail}})
        return JSON({"detail": exc.detail}, status_code=exc.status)
    finally:
        state.end_batch()
    after = partial(
        hand_over, state, batch.rows or [], batch.alerts, batch.leads, batch.mql, batch.p_sql, batch.invalid
    )
    return Response(batch.response(), media_type="application/json", background=later(after))


def later(work: Callable[[], None]) -> BackgroundTask:
    """``work`` run once the response is sent, on the event loop in the request's own task: no
    thread hop, and nothing else runs between the answer and it (the next answer for the same
    lead finds the row queued)."""

    async def run() -> None:
        work()

    return BackgroundTask(run)


async def _score_elsewhere(
    state: ServiceState, model: Loaded, body: bytes, explain: int, request_id: str | None
) -> Batch:
    """The batch scored by a scorer process (this process's event loop only waits for it)."""
    scorers = state.scorers
    assert scorers is not None
    log = state.score_log
    # The scorers find the leads' previous answers themselves: this process only hands them its
    # queued rows' answers and the store's URL (no parsing or lookup here).
    view = await asyncio.to_thread(log.view) if log is not None else None  # pickling: off the loop
    job = Job(serial=model.serial, bundle=None, body=body, explain=explain, log=view, request_id=request_id)
    return await scorers.score(model, job)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


@router.get("/v1/model", response_model=ModelOut, responses={401: ERRORS[401]})
async def describe_model(model: ModelDep, state: StateDep) -> Response:
    """The model answering requests: version, test metrics, cutoff contract and the fields it expects."""
    bundle = model.bundle
    fields = []
    for f in bundle.encoder.fields:
        entry: dict[str, Any] = {
            "name": f.name,
            "type": {"numeric": "number", "categorical": "category"}.get(f.kind, f.kind),
            "group": f.group,
        }
        if f.kind == "categorical":
            entry["categories"] = [f.display.get(c, c) for c in f.categories]
        if f.low is not None or f.high is not None:
            entry["range"] = [f.low, f.high]
        fields.append(entry)
    meta = bundle.meta
    overdue = meta.cutoff.review_warning()
    return JSON(
        {
            "name": bundle.name,
            "model_version": model.model_version,
            "bundle_version": bundle.version,
            "registered": meta.registered.model_dump(mode="json") if meta.registered else None,
            "metrics": meta.metrics,
            "baselines": meta.baselines,
            "cutoff": meta.cutoff.model_dump(mode="json"),
            "cutoff_overdue": bool(overdue),
            "threshold": bundle.threshold,
            "id_field": bundle.spec.id,
            "time_field": bundle.encoder.time_col,
            "fields": fields,
            "excluded_columns": meta.excluded_columns,
            "learned_from": meta.learned_from,
            "events": _event_vocabulary(bundle),
            "warnings": [overdue] if overdue else [],
            "score_log": _score_log_status(state),
            "segments": (
                {"by": meta.segments.by, "segments": segment_rows(meta.segments)}
                if meta.segments is not None
                else None
            ),
        }
    )


def _score_log_status(state: ServiceState) -> dict[str, Any]:
    """Whether answers are logged (and so carry previous and trend), and how the trend is judged."""
    log = state.score_log
    return {
        "enabled": log is not None,
        "connected": bool(log is not None and log.connected),
        "trend_threshold": state.trend_threshold,
        "written": log.written if log is not None else 0,
        "dropped": log.dropped if log is not None else 0,
    }


def _event_vocabulary(bundle: Any) -> dict[str, list[str]] | None:
    """For a model with declared engagement: the event types and attributes it reads from a lead's activity."""
    declared = bundle.spec.declared
    if not declared:
        return None
    types = sorted({t for d in declared.values() for t in d.types if t.strip().casefold() != ANY})
    attributes = sorted(
        {c for d in declared.values() for c in [*d.where, *([d.attribute] if d.attribute else [])]}
    )
    return {"types": types, "attributes": attributes}


@router.post(
    "/v1/admin/reload",
    response_model=ReloadOut,
    responses={
        202: {
            "model": ReloadOut,
            "description": "several workers: this one reloaded, the others follow (see the status endpoint)",
        },
        **ADMIN_ERRORS,
        409: {"model": ErrorOut, "description": "the new model failed to load; the old one keeps serving"},
    },
)
async def reload_model(state: StateDep) -> Response:
    """Load the model source again (a new champion) and swap it in; requests in flight finish on the old one."""
    generation = state.board.bump() if state.board is not None else None
    try:
        before, after = await reload_state(state, generation)
    except UserError as exc:
        state.metrics.errors.labels(kind="reload_failed").inc()
        current = state.loaded.model_version if state.loaded else None
        return JSON({"detail": f"reload failed, still serving {current}: {exc}"}, status_code=409)
    if state.board is None:
        return JSON({"status": "reloaded", "model_version": after, "previous_version": before})
    # Every other worker reloads itself within a second; GET /v1/admin/reload/status says when all have.
    answer = {"status": "reloading workers", "model_version": after, "previous_version": before}
    return JSON({**answer, "generation": generation}, status_code=202)


@router.get("/v1/admin/reload/status", response_model=ReloadStatusOut, responses=ADMIN_ERRORS)
async def reload_status(state: StateDep) -> Response:
    """Which model each worker serves, and whether the last reload reached every worker."""
    current = state.loaded.model_version if state.loaded else None
    if state.board is None:
        worker = {"pid": os.getpid(), "model_version": current, "generation": 0, "error": None}
        return JSON({"generation": 0, "complete": True, "failed": False, "workers": [worker]})
    return JSON(state.board.summary())


@router.get("/v1/admin/webhooks", response_model=WebhooksOut, responses=ADMIN_ERRORS)
async def webhooks_status(state: StateDep) -> Response:
    """The alerts' deliveries: how many are pending, delivered and failed (per URL), and the latest
    ones still retrying or given up, with their errors."""
    deliverer = state.webhooks
    if deliverer is None:
        return JSON({"enabled": False, "pending": 0, "delivered": 0, "failed": 0, "urls": {}, "troubled": []})
    summary = await asyncio.to_thread(webhook_summary, open_store(deliverer.url))
    return JSON({"enabled": True, **summary, "queued_dropped": deliverer.dropped})


@router.post(
    "/v1/leads/{lead_id}/decision",
    response_model=DecisionOut,
    responses={
        401: ERRORS[401],
        422: ERRORS[422],
        403: {"model": ErrorOut, "description": "not a key that may decide"},
    },
)
async def decide(lead_id: str, request: Request, state: StateDep) -> Response:
    """A rep accepts or rejects an MQL (with a standard reason): recorded as feedback import records
    it, once, with who decided and when."""
    body = _parse(await request.body())
    rep = state.keys.rep_name(key_from_headers(dict(request.headers.raw)))
    try:
        own = state.loaded.bundle.spec.reject_reasons if state.loaded is not None else ()
        decision = checked_decision(lead_id, body, rep, own)
    except DecisionError as exc:
        return JSON({"detail": str(exc), "field": exc.field}, status_code=422)
    new = await asyncio.to_thread(record_decision, state.database_url, decision)
    shown = {**decision, "decided_at": decision["decided_at"].isoformat() + "Z"}
    shown["mql_at"] = decision["mql_at"].isoformat() + "Z" if decision["mql_at"] else None
    return JSON({**shown, "recorded": new})


@router.get("/healthz", include_in_schema=True)
async def healthz() -> dict[str, str]:
    """Alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorOut}})
async def readyz(state: StateDep) -> Response:
    """Ready when a model is loaded, the batch scorers hold it (a batch sent before would wait for
    them), and the score log has tried its store once (connected, or found it down: the service
    scores either way, and the log says which)."""
    if state.loaded is None:
        return JSON({"status": "loading"}, status_code=503)
    if state.scorers_warming:
        return JSON({"status": "starting the batch scorers"}, status_code=503)
    if state.score_log is not None and not state.score_log.tried.is_set():
        return JSON({"status": "connecting to the store"}, status_code=503)
    ready: dict[str, Any] = {"status": "ready", "model_version": state.loaded.model_version}
    if state.scorers is not None:
        ready["batch_scorers"] = state.scorers.holding(state.loaded)  # holding the served model
    return JSON(ready)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(state: StateDep) -> Response:
    """Prometheus metrics: requests, latency, score and MQL-rate distribution, errors by kind."""
    if state.score_log is not None:
        state.metrics.log_written.set(state.score_log.written)
        state.metrics.log_dropped.set(state.score_log.dropped)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
