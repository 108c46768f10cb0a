"""The work an answer leaves behind (its score-log row, webhooks, the scoring metrics) is done once
the answer is sent, before the request ends: the CRM does not wait for it, the next answer for the
same lead still finds the row, and the latency the service reports ends at the answer's last byte."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from leadscore.config import Settings
from leadscore.service import gate, one_lead
from leadscore.service.app import create_app
from leadscore.service.state import ServiceState
from tests.helpers import Trained, asgi_score, make_leads, run_async

LEAD_ID = 424242


@pytest.fixture
def logged(trained: Trained, tmp_path) -> Iterator[tuple[FastAPI, ServiceState]]:
    settings = Settings(
        log_scores=True, database_url=f"sqlite:///{tmp_path / 'log.db'}", warm_scorers=False, webhooks=""
    )
    app = create_app(str(trained["model_path"]), insecure=True, settings=settings)
    state: ServiceState = app.state.leadscore
    yield app, state
    assert state.score_log is not None
    state.score_log.close(10.0)


def _body(**changes: Any) -> bytes:
    lead = json.loads(make_leads(50, 95, fault_rate=0.0).iloc[3].to_json(date_format="iso"))
    return json.dumps({**lead, "lead_id": LEAD_ID, **changes}).encode()


def _post(
    app: FastAPI, query: bytes, body: bytes, at_last_byte: Callable[[], Any]
) -> tuple[Any, Any, dict[str, Any]]:
    """POST /v1/score through the ASGI app: what ``at_last_byte`` saw as the answer's last byte was
    sent, what it sees once the request is over, and the answer."""
    _, answer, sent = run_async(lambda: asgi_score(app, body, query=query, at_last_byte=at_last_byte))
    return sent, at_last_byte(), json.loads(answer)


def _logged_and_counted(state: ServiceState) -> Callable[[], tuple[bool, float | None]]:
    def look() -> tuple[bool, float | None]:
        assert state.score_log is not None
        found = str(LEAD_ID) in state.score_log.previous([str(LEAD_ID)])
        return found, state.metrics.registry.get_sample_value("leadscore_leads_scored_total")

    return look


@pytest.mark.parametrize("fast", [True, False], ids=["gate", "fastapi-route"])
def test_the_log_row_and_metrics_come_after_the_answer_and_before_the_next(
    logged: tuple[FastAPI, ServiceState], monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    app, state = logged
    monkeypatch.setattr(gate, "FAST_SCORE", fast)
    look = _logged_and_counted(state)
    sent, over, first = _post(app, b"explain=3", _body(), look)
    assert first["previous"] is None
    assert sent == (False, 0.0)  # nothing queued or counted while the CRM waited
    assert over == (True, 1.0)  # both done before the request ended
    _, _, again = _post(app, b"explain=3", _body(), look)
    assert again["previous"]["p_sql"] == first["p_sql"]  # the next answer finds the row
    assert again["changes"] == []


def test_a_refused_lead_leaves_nothing_behind(logged: tuple[FastAPI, ServiceState]) -> None:
    app, state = logged
    sent, over, answer = _post(app, b"", _body(web_visits_30d="many"), _logged_and_counted(state))
    assert answer["field"] == "web_visits_30d"
    assert sent == over == (False, 0.0)


def test_the_reported_latency_ends_at_the_answers_last_byte(
    logged: tuple[FastAPI, ServiceState], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, state = logged
    real = one_lead._after

    def slow_after(*args: Any) -> None:
        time.sleep(1.0)
        real(*args)

    monkeypatch.setattr(one_lead, "_after", slow_after)
    start = time.perf_counter()
    sent, over, _ = _post(app, b"", _body(), _logged_and_counted(state))
    took = time.perf_counter() - start
    reported = state.metrics.registry.get_sample_value(
        "leadscore_request_latency_seconds_sum", {"path": "/v1/score"}
    )
    assert (sent, over) == ((False, 0.0), (True, 1.0))
    assert took >= 1.0
    assert reported is not None and reported < 1.0  # the second spent after the answer is not in it
