"""The webhooks' outbox on each database: events written once, deliveries claimed one worker at a
time, retried and delivered, and MQLs nobody decided on found past their respond-within."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from leadscore.service.alerts import FAST, MQL, OVERDUE, alerts_of, overdue_event
from leadscore.store.db import open_store
from leadscore.store.decisions import add_decisions
from leadscore.store.webhooks import claim_due, mark, undecided_mqls, webhook_summary, write_events

NOW = datetime(2026, 12, 5, 12, 0, 0)
URLS = ["http://crm.test/hook", "http://chat.test/hook"]


def _answer(lead: str, *, fast: bool = False, previous_mql: bool | None = None) -> dict[str, object]:
    previous = None if previous_mql is None else {"mql": previous_mql, "p_sql": 0.1}
    return {
        "lead_id": lead,
        "mql": True,
        "p_sql": 0.4,
        "grade": "A1",
        "respond_within": "1h" if fast else "24h",
        "reasons": {"positive": [{"text": "Requested a demo"}], "negative": []},
        "model_version": "m1",
        "previous": previous,
    }


def test_events_are_written_once_and_each_delivery_is_claimed_by_one_worker(database_url: str) -> None:
    store = open_store(database_url)
    answers = [
        _answer("L1"),
        _answer("L2", fast=True),
        _answer("L3", previous_mql=True),
        _answer("L4", previous_mql=False),
    ]
    events = alerts_of(answers, NOW)
    assert [(e.lead_id, e.kind) for e in events] == [("L1", MQL), ("L2", FAST), ("L4", MQL)]  # L3 was one
    assert write_events(store, events, URLS, NOW) == 3
    assert write_events(store, events, URLS, NOW) == 0  # the same events again: nothing new
    lease = timedelta(seconds=15)
    first = claim_due(store, NOW, lease)
    assert len(first) == 6 and claim_due(store, NOW, lease) == []  # claimed: another worker skips them
    assert len(claim_due(store, NOW + timedelta(seconds=16), lease)) == 6  # a claim that lapsed
    due = claim_due(store, NOW + timedelta(seconds=40), lease)
    mark(store, due[0], delivered=True, now=NOW, retry_at=None, error=None)
    mark(store, due[1], delivered=False, now=NOW, retry_at=NOW + timedelta(seconds=60), error="HTTP 503")
    mark(store, due[2], delivered=False, now=NOW, retry_at=None, error="HTTP 410")
    summary = webhook_summary(store)
    assert (summary["pending"], summary["delivered"], summary["failed"]) == (4, 1, 1)
    assert {t["error"] for t in summary["troubled"]} == {"HTTP 503", "HTTP 410"}
    assert sum(sum(v.values()) for v in summary["urls"].values()) == 6


def test_an_mql_nobody_decided_on_is_overdue_after_its_respond_within(database_url: str) -> None:
    store = open_store(database_url)
    old = NOW - timedelta(hours=2)
    events = alerts_of([_answer("F1", fast=True), _answer("F2", fast=True), _answer("S1")], old)
    write_events(store, events, URLS[:1], old)
    decided = pd.DataFrame(
        {"lead_id": ["F2"], "decision": ["accepted"], "reason": [None], "decided_at": [old + timedelta(minutes=30)],
         "mql_at": [old], "rep": ["Dana Ortiz"]}
    )  # fmt: skip
    add_decisions(store, decided)
    late = undecided_mqls(store, {MQL: NOW - timedelta(hours=24), FAST: NOW - timedelta(hours=1)})
    assert [m["lead_id"] for m in late] == ["F1"]  # F2 was accepted; S1 has 24 hours
    overdue = overdue_event(late[0], NOW)
    assert overdue.kind == OVERDUE and overdue.payload["mql_event"] == late[0]["event_id"]
    assert write_events(store, [overdue], URLS[:1], NOW) == 1
    assert write_events(store, [overdue_event(late[0], NOW + timedelta(minutes=1))], URLS[:1], NOW) == 0
