"""The webhooks' outbox: events written before they are sent, one delivery per (event, URL), each
tried again with back-off until the receiver takes it (or it is older than the give-up age).

Writing is idempotent (an event id written twice is one event), and a delivery is claimed before it
is sent (its next try moved past the send's timeout in one conditional UPDATE), so several service
workers sharing the store send each delivery once at a time; a worker that dies mid-send leaves the
claim to expire and the delivery is sent again: at least once, with the event id as the key a
receiver removes repeats by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from leadscore.store.db import Store
from leadscore.store.schema import decisions, webhook_deliveries, webhook_events

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Event:
    """An alert: its id (the idempotency key), kind, lead and the JSON payload sent."""

    event_id: str
    kind: str
    lead_id: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Due:
    """A delivery to try now."""

    event_id: str
    url: str
    attempts: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    next_at: datetime  # the claim's value: the delivery is this worker's until then


def _insert(store: Store, table: Any) -> Any:
    return (postgresql.insert if store.dialect == "postgresql" else sqlite.insert)(table)


def write_events(store: Store, events: Sequence[Event], urls: Sequence[str], now: datetime) -> int:
    """The events and a pending delivery to each URL, in one transaction; an event already written
    (the same id) is left as it is. Returns how many events were new."""
    if not events:
        return 0
    rows = [
        {
            "event_id": e.event_id,
            "kind": e.kind,
            "lead_id": e.lead_id,
            "payload": e.payload,
            "created_at": e.created_at,
        }
        for e in events
    ]
    sends = [
        {"event_id": e.event_id, "url": u, "status": PENDING, "attempts": 0, "next_at": now}
        for e in events
        for u in urls
    ]
    written = _insert(store, webhook_events).on_conflict_do_nothing().returning(webhook_events.c.event_id)
    with store.write() as conn:
        new = len(conn.execute(written, rows).all())
        conn.execute(_insert(store, webhook_deliveries).on_conflict_do_nothing(), sends)
    return new


def claim_due(store: Store, now: datetime, lease: timedelta, limit: int = 100) -> list[Due]:
    """Pending deliveries due by ``now``, each claimed for ``lease`` (others skip it meanwhile)."""
    d, e = webhook_deliveries, webhook_events
    query = (
        select(d.c.event_id, d.c.url, d.c.attempts, d.c.next_at, e.c.kind, e.c.payload, e.c.created_at)
        .join(e, e.c.event_id == d.c.event_id)
        .where(d.c.status == PENDING, d.c.next_at <= now)
        .order_by(d.c.next_at, e.c.created_at)
        .limit(limit)
    )
    claimed: list[Due] = []
    until = now + lease
    with store.write() as conn:
        for row in conn.execute(query).all():
            taken = conn.execute(
                update(d)
                .where(d.c.event_id == row.event_id, d.c.url == row.url, d.c.next_at == row.next_at)
                .values(next_at=until)
            ).rowcount
            if taken == 1:
                claimed.append(
                    Due(row.event_id, row.url, row.attempts, row.kind, row.payload, row.created_at, until)
                )
    return claimed


def mark(
    store: Store, due: Due, *, delivered: bool, now: datetime, retry_at: datetime | None, error: str | None
) -> None:
    """The outcome of one try: delivered, to be tried again at ``retry_at``, or (None) failed for good."""
    d = webhook_deliveries
    status = DELIVERED if delivered else (PENDING if retry_at is not None else FAILED)
    values: dict[str, Any] = {"status": status, "attempts": due.attempts + 1, "last_error": error}
    if delivered:
        values["delivered_at"] = now
    if retry_at is not None:
        values["next_at"] = retry_at
    with store.write() as conn:
        conn.execute(update(d).where(d.c.event_id == due.event_id, d.c.url == due.url).values(**values))


def next_due(store: Store) -> datetime | None:
    """When the earliest pending delivery is due (None: nothing pending)."""
    d = webhook_deliveries
    with store.read() as conn:
        found: datetime | None = conn.execute(
            select(func.min(d.c.next_at)).where(d.c.status == PENDING)
        ).scalar()
    return found


def undecided_mqls(
    store: Store, overdue_before: dict[str, datetime], limit: int = 500
) -> list[dict[str, Any]]:
    """MQL events older than their kind's respond-within (``overdue_before``: kind -> the latest
    creation time that is overdue now) whose lead has no decision since, with their payloads."""
    e, dc = webhook_events, decisions
    late = [and_(e.c.kind == kind, e.c.created_at <= before) for kind, before in overdue_before.items()]
    if not late:
        return []
    decided = exists().where(dc.c.lead_id == e.c.lead_id, dc.c.decided_at >= e.c.created_at)
    query = (
        select(e.c.event_id, e.c.kind, e.c.lead_id, e.c.payload, e.c.created_at)
        .where(or_(*late), ~decided)
        .order_by(e.c.created_at)
        .limit(limit)
    )
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]


def webhook_summary(store: Store, recent: int = 20) -> dict[str, Any]:
    """Deliveries by status and URL, and the latest failures and retries with their errors."""
    d, e = webhook_deliveries, webhook_events
    with store.read() as conn:
        counts = conn.execute(select(d.c.url, d.c.status, func.count()).group_by(d.c.url, d.c.status)).all()
        troubled = conn.execute(
            select(d.c.event_id, d.c.url, d.c.status, d.c.attempts, d.c.next_at, d.c.last_error, e.c.kind)
            .join(e, e.c.event_id == d.c.event_id)
            .where(d.c.last_error.is_not(None), d.c.status != DELIVERED)
            .order_by(d.c.next_at.desc())
            .limit(recent)
        ).all()
    by_status = {PENDING: 0, DELIVERED: 0, FAILED: 0}
    urls: dict[str, dict[str, int]] = {}
    for url, status, n in counts:
        by_status[status] = by_status.get(status, 0) + int(n)
        urls.setdefault(url, {PENDING: 0, DELIVERED: 0, FAILED: 0})[status] = int(n)
    return {
        **by_status,
        "urls": urls,
        "troubled": [
            {
                "event_id": r.event_id,
                "kind": r.kind,
                "url": r.url,
                "status": r.status,
                "attempts": r.attempts,
                "next_try": r.next_at.isoformat() + "Z" if r.status == PENDING else None,
                "error": r.last_error,
            }
            for r in troubled
        ],
    }
