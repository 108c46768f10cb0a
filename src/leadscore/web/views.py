"""What sales' pages show, from the store's rows and the loaded model: the queue's rows with their
SLA clocks, and one lead scored as of now with its history, why it changed, and its decisions.
Every value from lead data reaches the page through Jinja's autoescape (a job title of ``<script>``
is text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from leadscore.features import parse_date
from leadscore.reports import svg
from leadscore.reports.activity import talking_points
from leadscore.reports.html import display_line, field_values
from leadscore.scoring.changes import score_changes
from leadscore.scoring.reasons import readable_type
from leadscore.service.loaded import Loaded
from leadscore.store.queue import LeadRow, QueuePage

OWNER_WORDS = ("owner", "assigned", "rep")


def environment() -> Environment:
    """The pages' templates (``web/templates``), extending the reports' base page and its styles."""
    env = Environment(
        loader=ChoiceLoader(
            [PackageLoader("leadscore.web", "templates"), PackageLoader("leadscore.reports", "templates")]
        ),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, d=0: "n/a" if v is None else f"{float(v):.{d}%}"
    env.filters["when"] = when
    return env


def when(value: datetime | None) -> str:
    """A stored (naive UTC) time as people read it."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def clock(due_at: datetime | None, now: datetime) -> dict[str, Any] | None:
    """The SLA clock of an open MQL: time left, or how long overdue."""
    if due_at is None:
        return None
    left = (due_at - now).total_seconds()
    return {
        "overdue": left < 0,
        "text": ("overdue by " if left < 0 else "") + _span(abs(left)) + ("" if left < 0 else " left"),
    }


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


def who(row: LeadRow, display: list[str]) -> dict[str, str | None]:
    """The lead's name line and its owner (a display field named like an owner), from display fields."""
    owner_cols = [c for c in display if any(w in c.casefold() for w in OWNER_WORDS)]
    rest = [c for c in display if c not in owner_cols]
    owner = next((row.display[c] for c in owner_cols if row.display.get(c)), None)
    return {"name": display_line(rest, dict(row.display)), "owner": owner}


def queue_rows(page: QueuePage, loaded: Loaded, now: datetime) -> list[dict[str, Any]]:
    """The queue page's rows."""
    display = list(loaded.bundle.spec.display)
    return [
        {
            "row": r,
            **who(r, display),
            "clock": clock(r.due_at, now),
            "fast": r.respond_within == "1h",
        }
        for r in page.rows
    ]


def card_view(row: LeadRow, loaded: Loaded, now: datetime) -> dict[str, Any]:
    """The lead scored now by the loaded model on its last logged fields: P(SQL) against its
    cutoff, grade, the SLA clock while it waits, its history, what moved since the answer before and
    its top reasons (what the card shows; the lead page adds the rest)."""
    bundle = loaded.bundle
    record: dict[str, Any] = dict(row.inputs or {})
    if bundle.id_column:
        record[bundle.id_column] = row.lead_id
    result = bundle.score_record(record, explain=5) if row.inputs is not None else None
    threshold = bundle.threshold_for(record)
    moved = score_changes(bundle, [record], [row.previous_inputs])[0] if result is not None else None
    p_sql = result["p_sql"] if result else row.p_sql
    points = [(when(t)[:16], p) for t, p in row.history]
    return {
        "row": row,
        "record": record,
        "result": result,
        "p_sql": p_sql,
        "grade": result["grade"] if result else row.grade,
        "mql": bool(result["mql"]) if result else row.mql,
        "threshold": threshold,
        "gauge": svg.score_gauge(p_sql, threshold),
        "history": svg.score_history(points, threshold) if points else "",
        "changes": moved or [],
        "clock": clock(row.due_at, now),
        "top": result["reasons"]["positive"][:3] if result else [],
    }


def lead_view(row: LeadRow, loaded: Loaded, now: datetime) -> dict[str, Any]:
    """The lead page: the card's values, and who the lead is, why this score (reasons and their
    chart), how fast to respond, talking points, its recent activity and the fields it was scored on."""
    bundle = loaded.bundle
    view = card_view(row, loaded, now)
    result = view["result"]
    reasons = (result["reasons"]["positive"] + result["reasons"]["negative"]) if result else []
    respond = row.respond_within or (result["respond_within"] if result else "24h")
    fit_fields, engagement_fields = field_values(bundle, view["record"])
    return {
        **view,
        **who(row, list(bundle.spec.display)),
        "reasons_chart": svg.hbars([(r["text"], r["weight"]) for r in reasons], unit=" pp")
        if reasons
        else "",
        "respond": respond,
        "talking_points": talking_points(result, None, respond if row.due_at else "") if result else [],
        "timeline": timeline(row.activity, bundle.spec.event_labels),
        "fit_fields": fit_fields,
        "engagement_fields": engagement_fields,
    }


def timeline(events: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, str]]:
    """The events a lead was last sent with, newest first, in people's words: when, what (the spec's
    label for its type, or the type made readable) and its other attributes."""
    rows = []
    for event in events:
        ms = parse_date(event.get("time")) if isinstance(event.get("time"), str) else float("nan")
        at = None if ms != ms else datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)
        rest = [f"{k}: {v}" for k, v in event.items() if k not in ("type", "time") and v not in (None, "")]
        rows.append(
            (
                ms if ms == ms else float("-inf"),
                {
                    "when": when(at) or str(event.get("time") or ""),
                    "what": readable_type(str(event.get("type") or ""), labels),
                    "detail": "; ".join(rest),
                },
            )
        )
    return [r for _, r in sorted(rows, key=lambda x: -x[0])]
