"""The pages' reads on SQLite and a real PostgreSQL: each lead's MQL clock kept by the log's upsert,
the queue (open MQLs, overdue first, filters, pages) and one lead's row with its history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from leadscore.store.db import open_store
from leadscore.store.decisions import add_decisions
from leadscore.store.queue import PAGE_ROWS, lead_decisions, lead_row, open_mqls
from leadscore.store.scores import HISTORY_POINTS, history_point, history_points, write_scores

T0 = datetime(2026, 12, 1, 9, 0)


def _row(lead: str, p: float, at: datetime, mql: bool, **extra: Any) -> dict[str, Any]:
    return {
        "lead_id": lead,
        "scored_at": at,
        "model_name": "m",
        "model_version": "3",
        "cutoff_version": "c1",
        "p_sql": p,
        "mql": mql,
        "grade": "A1" if p > 0.5 else "C3",
        "reasons": "[]",
        "inputs": {"visits": int(p * 10)},
        "source": "api",
        "respond_within": "24h",
        "top_reasons": ["Visited the pricing page"],
        "segment": "EMEA",
        "display": {"First Name": "Dana", "Company": "Acme <b>GmbH</b>"},
        **extra,
    }


def test_the_clock_starts_when_a_lead_crosses_and_stops_when_it_falls(database_url: str) -> None:
    store = open_store(database_url)
    write_scores(store, [_row("1", 0.2, T0, False)])
    first = lead_row(store, "1")
    assert first is not None and first.mql_at is None and first.due_at is None
    write_scores(store, [_row("1", 0.7, T0 + timedelta(hours=1), True)])
    write_scores(store, [_row("1", 0.8, T0 + timedelta(hours=5), True)])  # still over: same clock
    row = lead_row(store, "1")
    assert row is not None
    assert row.mql_at == T0 + timedelta(hours=1) and row.due_at == T0 + timedelta(hours=25)
    assert row.inputs == {"visits": 8} and row.previous_inputs == {"visits": 7}
    assert [p for _, p in row.history] == [0.2, 0.7, 0.8]
    assert row.display == {"First Name": "Dana", "Company": "Acme <b>GmbH</b>"}
    # a demo request while it waits: due within the hour from now, earlier than the day's clock
    write_scores(store, [_row("1", 0.9, T0 + timedelta(hours=6), True, respond_within="1h")])
    row = lead_row(store, "1")
    assert row is not None and row.mql_at == T0 + timedelta(hours=1) and row.due_at == T0 + timedelta(hours=7)
    write_scores(store, [_row("1", 0.9, T0 + timedelta(hours=3), False)])  # an older answer changes nothing
    assert lead_row(store, "1") == row
    write_scores(store, [_row("1", 0.3, T0 + timedelta(hours=8), False)])  # under the cutoff: no clock
    row = lead_row(store, "1")
    assert row is not None and row.mql_at is None and row.due_at is None
    write_scores(store, [_row("1", 0.6, T0 + timedelta(hours=9), True)])  # crosses again: a new clock
    row = lead_row(store, "1")
    assert row is not None and row.mql_at == T0 + timedelta(hours=9)


def test_the_history_keeps_the_last_points_whole(database_url: str) -> None:
    store = open_store(database_url)
    for k in range(HISTORY_POINTS + 7):
        write_scores(store, [_row("h", (k % 10) / 10, T0 + timedelta(minutes=k), False)])
    row = lead_row(store, "h")
    assert row is not None and len(row.history) == HISTORY_POINTS
    assert row.history[0] == (T0 + timedelta(minutes=7), 0.7)
    assert row.history[-1] == (T0 + timedelta(minutes=HISTORY_POINTS + 6), 0.6)
    assert history_points(history_point(T0, 1.0) + "0123") == [(T0, 1.0)]  # a torn point is dropped


def test_the_queue_is_open_mqls_overdue_first_then_best_first(database_url: str) -> None:
    store = open_store(database_url)
    now = T0 + timedelta(hours=30)
    rows = [
        _row("late", 0.55, T0, True),  # due T0+24h: overdue at now
        _row("fast", 0.60, now - timedelta(minutes=10), True, respond_within="1h", segment="US"),
        _row("best", 0.95, now - timedelta(hours=2), True, lead_source="Webinar"),
        _row("cold", 0.10, now, False),
        _row("done", 0.99, now - timedelta(hours=3), True),
    ]
    write_scores(store, rows)
    decided = {
        "lead_id": "done",
        "decision": "rejected",
        "reason": "duplicate",
        "rep": "Dana",
        "mql_at": None,
    }
    add_decisions(store, pd.DataFrame([{**decided, "decided_at": now - timedelta(hours=1)}]))
    page = open_mqls(store, now)
    assert [r.lead_id for r in page.rows] == ["late", "best", "fast"]
    assert (page.total, page.overdue, page.pages) == (3, 1, 1)
    assert page.choices == {"segment": ["EMEA", "US"], "grade": ["A1"], "source": ["Webinar"]}
    assert [r.lead_id for r in open_mqls(store, now, {"segment": "US"}).rows] == ["fast"]
    assert open_mqls(store, now, {"source": "Webinar", "grade": "A1"}).total == 1
    assert open_mqls(store, now, {"grade": "C3"}).rows == []
    assert lead_decisions(store, "done")[0]["reason"] == "duplicate"
    # a decision made before the lead crossed again does not close its new run
    write_scores(store, [_row("done", 0.2, now + timedelta(minutes=30), False)])
    write_scores(store, [_row("done", 0.9, now + timedelta(hours=1), True)])
    assert "done" in [r.lead_id for r in open_mqls(store, now + timedelta(hours=1)).rows]


def test_the_queue_pages_by_fifty(database_url: str) -> None:
    store = open_store(database_url)
    n = PAGE_ROWS + 7
    write_scores(store, [_row(f"L{k:03d}", 0.5 + k / 1000, T0, True) for k in range(n)])
    first, second = open_mqls(store, T0, page=1), open_mqls(store, T0, page=2)
    assert (first.pages, len(first.rows), len(second.rows)) == (2, PAGE_ROWS, 7)
    assert first.rows[0].lead_id == f"L{n - 1:03d}" and second.rows[-1].lead_id == "L000"
    assert open_mqls(store, T0, page=99).page == 2  # past the end: the last page
