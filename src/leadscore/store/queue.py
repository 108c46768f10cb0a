"""What sales' pages read from the store: the open MQLs (the queue) and one lead's last answer, its
score history and its decisions. Both read ``latest_scores`` (one row per lead, the open MQLs under a
partial index), never a scan of the score log."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.sql import ColumnElement

from leadscore.features.values import lead_key
from leadscore.store.db import Store
from leadscore.store.schema import decisions, latest_scores
from leadscore.store.scores import history_points

PAGE_ROWS = 50
FILTERS = ("segment", "grade", "source")  # the queue's filters (query parameters)
_FILTER_COLUMNS = {
    "segment": latest_scores.c.segment,
    "grade": latest_scores.c.grade,
    "source": latest_scores.c.lead_source,
}


@dataclass(frozen=True)
class LeadRow:
    """A lead's last answer as the pages show it (times naive UTC; ``due_at`` None: not an open MQL)."""

    lead_id: str
    p_sql: float
    grade: str
    mql: bool
    scored_at: datetime
    model_version: str
    mql_at: datetime | None
    due_at: datetime | None
    respond_within: str | None
    segment: str | None
    lead_source: str | None
    top_reasons: list[str]
    display: dict[str, str]
    inputs: dict[str, Any] | None = None
    previous_inputs: dict[str, Any] | None = None
    history: list[tuple[datetime, float]] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)  # the last events sent, as sent


@dataclass(frozen=True)
class QueuePage:
    """One page of the open MQLs, overdue first then best first, with what the filters can pick."""

    rows: list[LeadRow]
    total: int  # open MQLs matching the filters
    overdue: int  # of them, past their respond-within
    page: int
    pages: int
    choices: dict[str, list[str]]  # each filter's values among all open MQLs


def undecided() -> ColumnElement[bool]:
    """An open MQL: over the cutoff now, and nobody accepted or rejected it since it crossed."""
    decided = exists().where(
        decisions.c.lead_id == latest_scores.c.lead_id, decisions.c.decided_at >= latest_scores.c.mql_at
    )
    return and_(latest_scores.c.due_at.isnot(None), ~decided)


_QUEUE_COLUMNS = (
    latest_scores.c.lead_id,
    latest_scores.c.p_sql,
    latest_scores.c.grade,
    latest_scores.c.mql,
    latest_scores.c.scored_at,
    latest_scores.c.model_version,
    latest_scores.c.mql_at,
    latest_scores.c.due_at,
    latest_scores.c.respond_within,
    latest_scores.c.segment,
    latest_scores.c.lead_source,
    latest_scores.c.top_reasons,
    latest_scores.c.display,
)


def open_mqls(
    store: Store, now: datetime, filters: Mapping[str, str | None] | None = None, page: int = 1
) -> QueuePage:
    """The open MQLs matching ``filters`` (segment, grade, source: exact values), page ``page``."""
    wanted = {k: v for k, v in (filters or {}).items() if k in _FILTER_COLUMNS and v}
    where = [undecided(), *(_FILTER_COLUMNS[k] == v for k, v in wanted.items())]
    late = case((latest_scores.c.due_at < now, 1), else_=0)
    groups = (
        select(
            latest_scores.c.segment,
            latest_scores.c.grade,
            latest_scores.c.lead_source,
            func.count(),
            func.sum(late),
        )
        .where(undecided())
        .group_by(latest_scores.c.segment, latest_scores.c.grade, latest_scores.c.lead_source)
    )
    with store.read() as conn:
        counted = conn.execute(groups).all()
        total = sum(int(n) for s, g, src, n, _ in counted if _matches(wanted, s, g, src))
        pages = max(1, math.ceil(total / PAGE_ROWS))
        page = min(max(1, page), pages)
        query = (
            select(*_QUEUE_COLUMNS)
            .where(*where)
            .order_by(late.desc(), latest_scores.c.p_sql.desc(), latest_scores.c.lead_id)
            .limit(PAGE_ROWS)
            .offset((page - 1) * PAGE_ROWS)
        )
        rows = [_lead_row(r) for r in conn.execute(query).mappings()]
    overdue = sum(int(o or 0) for s, g, src, _, o in counted if _matches(wanted, s, g, src))
    choices = {
        name: sorted({str(r[i]) for r in counted if r[i] not in (None, "")})
        for i, name in enumerate(("segment", "grade", "source"))
    }
    return QueuePage(rows, total, overdue, page, pages, choices)


def _matches(wanted: Mapping[str, str], segment: Any, grade: Any, source: Any) -> bool:
    values = {"segment": segment, "grade": grade, "source": source}
    return all(values[k] == v for k, v in wanted.items())


def lead_row(store: Store, lead_id: Any) -> LeadRow | None:
    """The lead's last answer with its fields, the fields before, and its score history."""
    key = lead_key(lead_id)
    query = select(
        *_QUEUE_COLUMNS,
        latest_scores.c.inputs,
        latest_scores.c.previous_inputs,
        latest_scores.c.history,
        latest_scores.c.activity,
    ).where(latest_scores.c.lead_id == key)
    with store.read() as conn:
        found = conn.execute(query).mappings().first()
    return None if found is None else _lead_row(found)


def lead_decisions(store: Store, lead_id: Any) -> list[dict[str, Any]]:
    """The lead's recorded decisions, newest first."""
    query = (
        select(decisions.c.decision, decisions.c.reason, decisions.c.decided_at, decisions.c.rep)
        .where(decisions.c.lead_id == lead_key(lead_id))
        .order_by(decisions.c.decided_at.desc())
    )
    with store.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def _lead_row(row: Mapping[Any, Any]) -> LeadRow:
    return LeadRow(
        lead_id=str(row["lead_id"]),
        p_sql=float(row["p_sql"]),
        grade=str(row["grade"]),
        mql=bool(row["mql"]),
        scored_at=row["scored_at"],
        model_version=str(row["model_version"]),
        mql_at=row["mql_at"],
        due_at=row["due_at"],
        respond_within=row["respond_within"],
        segment=row["segment"],
        lead_source=row["lead_source"],
        top_reasons=[str(t) for t in _json(row["top_reasons"]) or [] if t],
        display={str(k): str(v) for k, v in (_json(row["display"]) or {}).items()},
        inputs=_json(row.get("inputs")),
        previous_inputs=_json(row.get("previous_inputs")),
        history=history_points(row.get("history")),
        activity=[dict(e) for e in _json(row.get("activity")) or [] if isinstance(e, dict)],
    )


def _json(value: Any) -> Any:
    """A JSON column's value (drivers hand back text or the value)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value
