"""One-lead requests that arrive together are answered together, and each gets what it gets alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI

from leadscore.config import Settings
from leadscore.service import answering, coalesce
from leadscore.service.app import create_app
from leadscore.service.state import ServiceState
from leadscore.store.db import open_store
from leadscore.store.scores import served_scores
from tests.helpers import Trained, asgi_score, make_leads, run_async

SAME = ("lead_id", "p_sql", "mql", "grade", "fit", "engagement", "reasons", "segment", "respond_within")


@pytest.fixture
def served(trained: Trained, tmp_path) -> Iterator[tuple[FastAPI, ServiceState, str]]:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    settings = Settings(log_scores=True, database_url=url, warm_scorers=False, webhooks="")
    app = create_app(str(trained["model_path"]), insecure=True, settings=settings)
    state: ServiceState = app.state.leadscore
    yield app, state, url
    assert state.score_log is not None
    state.score_log.close(10.0)


def _leads(n: int) -> list[dict[str, Any]]:
    frame = make_leads(n, 61, fault_rate=0.0)
    return [json.loads(frame.iloc[i].to_json(date_format="iso")) for i in range(n)]


async def _post(app: FastAPI, lead: dict[str, Any], rid: str) -> tuple[int, dict[str, Any]]:
    status, body, _ = await asgi_score(app, json.dumps(lead).encode(), query=b"explain=3", rid=rid)
    return status, json.loads(body)


def _at_once(app: FastAPI, leads: list[dict[str, Any]], prefix: str) -> list[Any]:
    """The requests sent at once: each one's status and answer (or what the app raised for it)."""

    async def all_of() -> list[Any]:
        calls = (_post(app, x, f"{prefix}-{i}") for i, x in enumerate(leads))
        return list(await asyncio.gather(*calls, return_exceptions=True))

    return run_async(all_of)


def _groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the leads' groups answered together (one lead answered alone: 1)."""
    sizes: list[int] = []
    real = answering.answer_leads

    def counting(model: Any, leads: list[Any], **kwargs: Any) -> answering.Answered:
        sizes.append(len(leads))
        return real(model, leads, **kwargs)

    monkeypatch.setattr(coalesce, "answer_leads", counting)
    return sizes


@pytest.mark.parametrize("n", [2, 5, 12])
def test_leads_sent_at_once_get_the_answers_they_get_alone(
    served: tuple[FastAPI, ServiceState, str], monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    app, state, url = served
    leads = _leads(n)
    alone = [_at_once(app, [x], "alone")[0] for x in leads]  # each sent by itself: no previous yet
    sizes = _groups(monkeypatch)
    together = _at_once(app, [{**x, "lead_id": f"{x['lead_id']}-b"} for x in leads], "together")
    # two are answered one by one (quicker); three or more as one batch
    assert sizes == ([1] * n if n < coalesce.GROUP_MIN else [n])
    for (code_a, a), (code_t, t) in zip(alone, together, strict=True):
        assert code_a == code_t == 200
        t["lead_id"] = a["lead_id"]
        assert {k: t[k] for k in SAME} == {k: a[k] for k in SAME}
        assert t == a  # the whole answer, to the bit: one row or a block of the same tables
    assert state.score_log is not None
    state.score_log.flush()
    logged = served_scores(open_store(url), datetime(2000, 1, 1))
    mine = logged[logged["request_id"].astype(str).str.startswith("together-")]
    # each request's row carries its own request id and its own lead
    assert sorted(mine["request_id"]) == sorted(f"together-{i}" for i in range(n))
    by_rid = dict(zip(mine["request_id"], mine["lead_id"].astype(str), strict=True))
    assert all(by_rid[f"together-{i}"] == f"{leads[i]['lead_id']}-b" for i in range(n))
    scored = state.metrics.registry.get_sample_value("leadscore_leads_scored_total")
    assert scored == 2 * n
    # /metrics tells how many requests each turn held: n turns of one, then one turn of n
    groups = {
        k: state.metrics.registry.get_sample_value(f"leadscore_one_lead_group_size_{k}")
        for k in ("count", "sum")
    }
    assert groups == {"count": n + 1, "sum": 2 * n}


def test_a_group_that_fails_is_answered_again_one_lead_at_a_time(
    served: tuple[FastAPI, ServiceState, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _, _ = served
    real = answering.answer_leads

    def fails_together(model: Any, leads: list[Any], **kwargs: Any) -> answering.Answered:
        if len(leads) > 1:
            raise RuntimeError("the batch path broke")
        if leads[0].record.get("lead_id") == 1003:
            raise ValueError("this one lead cannot be answered")
        return real(model, leads, **kwargs)

    monkeypatch.setattr(coalesce, "answer_leads", fails_together)
    leads = [{**x, "lead_id": 1000 + i} for i, x in enumerate(_leads(6))]
    answered = _at_once(app, leads, "mixed")
    bad = answered.pop(3)
    assert isinstance(bad, ValueError)  # the app lets the 500's cause through to the server
    assert [code for code, _ in answered] == [200] * 5
    assert [a["lead_id"] for _, a in answered] == [1000, 1001, 1002, 1004, 1005]


def test_a_request_that_goes_away_while_it_gathers_others_still_answers_them(
    served: tuple[FastAPI, ServiceState, str],
) -> None:
    _, state, _ = served
    model = state.loaded
    assert model is not None
    leads = [model.checker.check(x) for x in _leads(4)]
    alone = [
        answering.answer_leads(model, [x], explain=3, threads=1, trend_threshold=0.05, previous=None)
        for x in leads
    ]

    async def gone_first() -> list[Any]:
        together = coalesce.OneLeads()

        def ask(lead: Any) -> Any:
            return together.answer(
                model, lead, explain=3, request_id=None, previous=None, trend_threshold=0.05
            )

        tasks = [asyncio.ensure_future(ask(x)) for x in leads]
        await asyncio.sleep(0)  # the first waits for its turn to end, the others have joined it
        tasks[0].cancel()
        outcomes = list(await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30))
        # and the next request is answered: nobody waits for a first request that went away
        return [*outcomes, await asyncio.wait_for(ask(leads[0]), timeout=30)]

    first, *others, again = run_async(gone_first)
    assert isinstance(first, asyncio.CancelledError)
    assert [o.answers for o in others] == [a.answers for a in alone[1:]]
    assert again.answers == alone[0].answers
