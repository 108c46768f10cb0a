"""Alerts that cannot wait: which answers make a webhook event, and how an event is signed and worded.

An answer whose lead becomes an MQL (no previous logged answer, or a previous one under the cutoff)
is a ``lead.respond_within_1h`` event when its respond-within is one hour (a demo or pricing
request), else ``lead.mql``; an MQL event with no decision by its respond-within becomes
``lead.sla_overdue`` (the deliverer looks for them). Each event's id is a digest of what makes it
that event, so the same crossing written twice is one event and the receiver's idempotency key.

The body is JSON, signed with HMAC-SHA256 over ``<timestamp>.<body>`` (``X-Leadscore-Signature:
sha256=<hex>``, ``X-Leadscore-Timestamp``): a receiver checks the signature with the shared secret
and refuses an old timestamp (a replay). ``LEADSCORE_WEBHOOK_FORMAT=chat`` sends ``{"text": ...}``,
what Slack's and Teams' incoming webhooks read.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from leadscore.features.values import lead_key
from leadscore.store.webhooks import Event

MQL, FAST, OVERDUE = "lead.mql", "lead.respond_within_1h", "lead.sla_overdue"
RESPOND = {MQL: timedelta(hours=24), FAST: timedelta(hours=1)}  # the SLA clock of each MQL event


def event_id(*parts: str) -> str:
    """The idempotency key of the event made of ``parts`` (32 hex characters)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def alerts_of(answers: Sequence[Mapping[str, Any]], now: datetime) -> list[Event]:
    """The events these answers make: each lead that becomes an MQL with this answer."""
    out = []
    for a in answers:
        if not a.get("mql"):
            continue
        previous = a.get("previous")
        if previous is not None and previous.get("mql"):
            continue  # already an MQL: its event was sent when it crossed
        key = lead_key(a.get("lead_id"))
        if not key:
            continue  # a lead without an id cannot be followed up
        kind = FAST if a.get("respond_within") == "1h" else MQL
        stamp = now.isoformat()
        payload = {
            "event": kind,
            "lead_id": key,
            "p_sql": a.get("p_sql"),
            "grade": a.get("grade"),
            "respond_within": a.get("respond_within"),
            "respond_by": (now + RESPOND[kind]).isoformat() + "Z",
            "reasons": [r.get("text") for r in (a.get("reasons") or {}).get("positive", [])[:3]],
            "model_version": a.get("model_version"),
            "occurred_at": stamp + "Z",
        }
        ident = event_id(kind, key, str(a.get("model_version")), stamp)
        out.append(Event(ident, kind, key, {**payload, "id": ident}, now))
    return out


def overdue_event(mql: Mapping[str, Any], now: datetime) -> Event:
    """The ``lead.sla_overdue`` event of an MQL event (``undecided_mqls``' row) nobody decided on."""
    ident = event_id(OVERDUE, str(mql["event_id"]))
    payload = {
        **dict(mql["payload"]),
        "event": OVERDUE,
        "id": ident,
        "mql_event": mql["event_id"],
        "occurred_at": now.isoformat() + "Z",
    }
    return Event(ident, OVERDUE, str(mql["lead_id"]), payload, now)


def signed(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (epoch seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def body_of(kind: str, payload: Mapping[str, Any], fmt: str, link: str | None) -> bytes:
    """What is POSTed: the event's JSON, or a chat message."""
    if fmt != "chat":
        return orjson.dumps(dict(payload), option=orjson.OPT_SORT_KEYS)
    return orjson.dumps({"text": chat_text(kind, payload, link)})


def chat_text(kind: str, payload: Mapping[str, Any], link: str | None) -> str:
    """A short message for a chat channel: the lead, its score, why, and where to open it."""
    what = {
        MQL: "New MQL",
        FAST: "New MQL, respond within 1 hour",
        OVERDUE: "MQL not yet accepted or rejected, past its respond-within",
    }.get(kind, kind)
    p = payload.get("p_sql")
    score = f"P(SQL) {float(p):.0%}" if isinstance(p, int | float) else "P(SQL) unknown"
    reasons = "; ".join(str(r) for r in payload.get("reasons") or [] if r)
    lead = payload.get("lead_id")
    where = f" {link.rstrip('/')}/app/leads/{lead}" if link else ""
    return (
        f"{what}: lead {lead}, {score}, grade {payload.get('grade')}"
        + (f". {reasons}" if reasons else "")
        + where
    )
