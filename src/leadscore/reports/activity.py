"""What a lead did, for the people who read the lead report: its events until a moment, a timeline
in words, one sentence of its recent activity and talking points for the rep (a CRM's own event
types by the spec's ``event_labels``, else readable)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.folders import read_activity
from leadscore.features import dates_ms
from leadscore.scoring.reasons import readable_type
from leadscore.spec import DatasetSpec

EVENT_PHRASES = {
    "web_visit": "Visited the website",
    "pricing_page_view": "Viewed the pricing page",
    "webinar_registration": "Registered for a webinar",
    "webinar_attendance": "Attended a webinar",
    "content_download": "Downloaded {title}",
    "email_open": "Opened a marketing email",
    "email_click": "Clicked a link in a marketing email",
    "demo_request": "Requested a demo",
    "consultation_request": "Requested a consultation",
}
# How the activity summary counts events: (event type, singular, plural).
SUMMARY = (
    ("demo_request", "requested a demo", "requested a demo {n} times"),
    ("consultation_request", "requested a consultation", "requested a consultation {n} times"),
    ("pricing_page_view", "visited pricing once", "visited pricing {n} times"),
    ("webinar_attendance", "attended a webinar", "attended {n} webinars"),
    ("web_visit", "visited the site once", "visited the site {n} times"),
    ("email_click", "clicked one email", "clicked {n} emails"),
)
TIMELINE_ROWS = 25
SUMMARY_DAYS = 30


@dataclass
class Activity:
    when: str
    text: str
    stage: str


def lead_events(
    data: str | Path, lead_id: Any, until_ms: float | None, spec: DatasetSpec
) -> pd.DataFrame | None:
    """The lead's events up to its scoring time, newest first (``None`` when the data has none);
    a CRM's own activity log is read through its spec's column names."""
    events = read_activity(data, spec)
    if events is None:
        return None
    for column in ("funnel_stage", "content_title"):
        if column not in events.columns:
            events[column] = None
    mine = events[events["lead_id"].astype("string") == str(lead_id)].copy()
    mine["t_ms"] = dates_ms(mine["occurred_at"])
    if until_ms is not None and not math.isnan(until_ms):
        mine = mine[mine["t_ms"] <= until_ms]
    return mine.sort_values("t_ms", ascending=False, kind="stable")


def _event_text(row: Any, labels: Mapping[str, str]) -> str:
    kind = str(row.event_type)
    template = EVENT_PHRASES.get(kind)
    if template is None:  # a CRM's own activity type: the spec's words, else readable
        return readable_type(kind, labels)
    title = getattr(row, "content_title", None)
    if "{title}" in template:
        named = title.strip() if isinstance(title, str) else ""
        return template.format(title=f"the {named}" if named else "a content asset")
    return template


def activity(events: pd.DataFrame, labels: Mapping[str, str] | None = None) -> list[Activity]:
    rows = []
    for row in events.head(TIMELINE_ROWS).itertuples(index=False):
        when = np.datetime64(int(row.t_ms), "ms").astype(datetime).strftime("%Y-%m-%d %H:%M")
        stage = row.funnel_stage if isinstance(row.funnel_stage, str) else ""
        rows.append(Activity(when, _event_text(row, labels or {}), stage))
    return rows


def _downloaded(events: pd.DataFrame) -> list[str]:
    """Titles of the content the lead downloaded, newest first, each once."""
    titles = events.loc[events["event_type"] == "content_download", "content_title"]
    return list(dict.fromkeys(t for t in titles if isinstance(t, str)))


def activity_summary(
    events: pd.DataFrame, until_ms: float | None, labels: Mapping[str, str] | None = None
) -> str:
    """One sentence of what the lead did lately: "visited pricing twice, downloaded the ROI
    Calculator"; a CRM's own event types by their readable names ("page view 3 times")."""
    if events.empty:
        return "No recorded activity."
    end = until_ms if until_ms is not None and not math.isnan(until_ms) else float(events["t_ms"].max())
    recent = events[events["t_ms"] >= end - SUMMARY_DAYS * 86_400_000]
    if recent.empty:
        last = np.datetime64(int(events["t_ms"].max()), "ms").astype("datetime64[D]")
        return f"No activity in the last {SUMMARY_DAYS} days (last on {last})."
    counts = Counter(recent["event_type"].astype(str))
    bits = []
    for kind, one, many in SUMMARY:
        n = counts.get(kind, 0)
        if n:
            bits.append(one if n == 1 else many.format(n=n))
    titles = _downloaded(recent)
    if titles:
        bits.append("downloaded " + ", ".join(f"the {t}" for t in titles))
    known = {kind for kind, _, _ in SUMMARY} | {"content_download", "email_open"}
    for kind, n in Counter({k: v for k, v in counts.items() if k not in known}).most_common(4):
        bits.append(f"{readable_type(kind, labels or {}).lower()} {'once' if n == 1 else f'{n} times'}")
    text = ", ".join(bits) if bits else "opened emails only"
    return f"In the last {SUMMARY_DAYS} days: {text}."


def talking_points(result: dict[str, Any], events: pd.DataFrame | None, respond: str) -> list[str]:
    """What a rep can open with, built from what the lead did and the model's reasons."""
    points: list[str] = []
    if respond == "1h":
        points.append("They asked for a demo or looked at pricing: call within the hour while it is fresh.")
    if events is not None and not events.empty:
        downloads = _downloaded(events)
        if downloads:
            points.append(f"Ask what they took from the {downloads[0]} and what they are evaluating.")
        if (events["event_type"] == "webinar_attendance").any():
            points.append("Follow up on the webinar they attended: which part mattered to them?")
        if (events["event_type"] == "pricing_page_view").any():
            points.append("They have seen pricing: be ready to talk plans, budget and timing.")
    positive = result["reasons"]["positive"]
    negative = result["reasons"]["negative"]
    fit_reason = next((r for r in positive if r["group"] == "fit"), None)
    if fit_reason:
        points.append(f"Open with why we fit: {fit_reason['text'].rstrip('.')}.")
    if negative and negative[0]["weight"] <= -1.0:  # only a doubt worth raising (a point or more)
        points.append(f"Qualify early: {negative[0]['text'].rstrip('.')}.")
    return points[:5]
