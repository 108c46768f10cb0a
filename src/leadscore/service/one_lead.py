"""``POST /v1/score``'s answer as a status and JSON bytes: called by its FastAPI route, and by the
request gate's fast path for a plain request (no query, or ``explain=N``) so that the hottest call
skips the framework's routing, dependencies and exception layers (docs/performance.md)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from leadscore.scoring.account_request import ACCOUNT_KEY, AccountRequestError, lead_account_answer
from leadscore.service.answering import Answered
from leadscore.service.batch_body import Refused, parse_body
from leadscore.service.leads import LeadError
from leadscore.service.loaded import Loaded
from leadscore.service.state import ServiceState
from leadscore.store.webhooks import Event
from leadscore.store.writer import PackedRows

SCORE_PATH = "/v1/score"
EXPLAIN_DEFAULT = 5  # reasons of each sign when the query names none (the routes' Explain)
EXPLAIN_MAX = 10  # the most the routes' Explain accepts
_PLAIN_QUERY = re.compile(rb"^explain=([0-9]{1,2})$")


def plain_explain(query: bytes) -> int | None:
    """The reasons asked for by a query the fast path may answer (none, or one valid ``explain``);
    None for anything else, which FastAPI answers (its own checks and error bodies)."""
    if not query:
        return EXPLAIN_DEFAULT
    found = _PLAIN_QUERY.match(query)
    if found is None:
        return None
    explain = int(found.group(1))
    return explain if explain <= EXPLAIN_MAX else None


def _nothing() -> None:
    """Nothing left to do once the answer is sent (a refused lead)."""


class OneAnswer(NamedTuple):
    """One lead's answer: the status and JSON body to send, and what is done once they are sent
    (``after``: the score log's row made and queued, webhooks, the scoring metrics)."""

    status: int
    body: bytes
    after: Callable[[], None] = _nothing


async def score_one_lead(
    state: ServiceState, model: Loaded, raw: bytes, explain: int, request_id: str | None
) -> OneAnswer:
    """One lead's answer (200), or why not (422 naming the field). The caller sends it, then calls
    its ``after``: the score log's row is not made on the way to the CRM (docs/performance.md)."""
    try:
        body = parse_body(raw)
    except Refused as exc:
        return OneAnswer(exc.status, orjson.dumps({"detail": exc.detail}))
    try:
        checked = model.checker.check(body)
    except LeadError as exc:
        state.metrics.errors.labels(kind="invalid_lead").inc()
        return OneAnswer(422, orjson.dumps({"detail": str(exc), "field": exc.field}))
    log = state.score_log
    done = await state.one_leads.answer(  # with the other leads that arrived with it
        model,
        checked,
        explain=explain,
        request_id=request_id,
        previous=log.previous if log is not None else None,
        trend_threshold=state.trend_threshold,
    )
    answer = done.answers[0]
    if state.accounts is not None and isinstance(body, dict) and body.get(ACCOUNT_KEY) is not None:
        try:
            answer[ACCOUNT_KEY] = lead_account_answer(state.accounts, body, explain)
        except AccountRequestError as exc:
            state.metrics.errors.labels(kind="invalid_lead").inc()
            return OneAnswer(422, orjson.dumps({"detail": str(exc), "field": exc.field}))
        if state.account_log is not None:
            state.account_log.add(answer[ACCOUNT_KEY])
    return OneAnswer(200, orjson.dumps(answer), functools.partial(_after, state, done))


def _after(state: ServiceState, done: Answered) -> None:
    """Once the answer is sent: its log row made, then handed over."""
    rows = done.log_rows() if state.score_log is not None else None
    hand_over(state, [rows] if rows is not None else [], done.alerts, 1, done.mql, done.p_sql)


def hand_over(
    state: ServiceState,
    rows: list[PackedRows],
    alerts: list[Event],
    leads: int,
    mql: int,
    p_sql: Any,
    invalid: int = 0,
) -> None:
    """What answered leads leave once their answer is sent (one lead or a batch): their log rows
    queued, their alerts handed to the webhooks, and the scoring figures counted."""
    if state.score_log is not None:
        for part in rows:
            state.score_log.submit(part)
    if state.webhooks is not None:
        state.webhooks.submit(alerts)
    state.metrics.count_answers(leads, mql, p_sql, invalid)
