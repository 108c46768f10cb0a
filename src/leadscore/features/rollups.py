"""Engagement roll-ups: raw timestamped events into per-lead counts as of each lead's scoring time.

No event after a lead's scoring time is ever used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.features.values import MS_PER_DAY as _MS_PER_DAY
from leadscore.features.values import to_epoch_ms

EVENT_TYPES = (
    "web_visit",
    "pricing_page_view",
    "webinar_registration",
    "webinar_attendance",
    "content_download",
    "email_open",
    "email_click",
    "demo_request",
    "consultation_request",
)
FUNNEL_STAGES = ("top", "mid", "bottom")

ENGAGEMENT_COLUMNS = (
    "web_visits_30d",
    "return_visits_7d",
    "pricing_page_views_7d",
    "pricing_page_views_total",
    "webinars_registered",
    "webinars_attended",
    "downloads_top",
    "downloads_mid",
    "downloads_bottom",
    "email_opens_30d",
    "email_clicks_30d",
    "demo_requests",
    "consultation_requests",
    "days_since_last_activity",
)


def align_events(
    events: pd.DataFrame,
    anchors: pd.DataFrame,
    *,
    id_col: str,
    time_col: str,
    event_id: str,
    event_time: str,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each event against its lead's scoring time: the number of leads, each event's lead row, its age
    in days, its time (epoch ms), and whether it may be read (a known lead, at or before the scoring
    time: the point in time, never a later event)."""
    anchor_ids = pd.Index(anchors[id_col].to_numpy())
    if not anchor_ids.is_unique:
        raise ValueError(f"anchors: column '{id_col}' has duplicate ids")
    anchor_t = to_epoch_ms(anchors[time_col])
    pos = anchor_ids.get_indexer(events[event_id].to_numpy())
    ev_t = to_epoch_ms(events[event_time])
    pos_safe = np.where(pos >= 0, pos, 0)
    age_days = (anchor_t[pos_safe] - ev_t) / _MS_PER_DAY
    usable = (pos >= 0) & (age_days >= 0)
    return len(anchors), pos_safe, age_days, ev_t, usable


def engagement_rollups(
    events: pd.DataFrame,
    anchors: pd.DataFrame,
    *,
    id_col: str = "lead_id",
    time_col: str = "scored_at",
) -> pd.DataFrame:
    """Engagement counts per lead using only events at or before that lead's scoring time.

    ``events`` has ``lead_id``, ``occurred_at``, ``event_type`` and ``funnel_stage``;
    ``anchors`` has one row per lead with its id and scoring time. The result is aligned
    with ``anchors`` row for row and has the columns in ``ENGAGEMENT_COLUMNS``.
    """
    n, pos_safe, age_days, _, usable = align_events(
        events, anchors, id_col=id_col, time_col=time_col, event_id=id_col, event_time="occurred_at"
    )

    etype = _CodedColumn(events["event_type"])
    stage = _CodedColumn(events["funnel_stage"])

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(pos_safe[usable & mask], minlength=n).astype(np.int32)

    is_visit = etype == "web_visit"
    is_pricing = etype == "pricing_page_view"
    is_download = etype == "content_download"
    within_7 = age_days <= 7
    within_30 = age_days <= 30
    out = {
        "web_visits_30d": count(is_visit & within_30),
        "return_visits_7d": np.maximum(count(is_visit & within_7) - 1, 0).astype(np.int32),
        "pricing_page_views_7d": count(is_pricing & within_7),
        "pricing_page_views_total": count(is_pricing),
        "webinars_registered": count(etype == "webinar_registration"),
        "webinars_attended": count(etype == "webinar_attendance"),
        "downloads_top": count(is_download & (stage == "top")),
        "downloads_mid": count(is_download & (stage == "mid")),
        "downloads_bottom": count(is_download & (stage == "bottom")),
        "email_opens_30d": count((etype == "email_open") & within_30),
        "email_clicks_30d": count((etype == "email_click") & within_30),
        "demo_requests": count(etype == "demo_request"),
        "consultation_requests": count(etype == "consultation_request"),
    }
    days_since = np.full(n, np.nan)
    np.fmin.at(days_since, pos_safe[usable], age_days[usable])  # the latest event is the youngest
    out["days_since_last_activity"] = np.round(days_since, 3)
    return pd.DataFrame(out, index=anchors.index)


class _CodedColumn:
    """A string column as category codes, so comparisons with a value stay cheap on 10M+ rows."""

    def __init__(self, series: pd.Series) -> None:
        cat = series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
        self._codes = cat.cat.codes.to_numpy()
        self._lookup = {str(v): i for i, v in enumerate(cat.cat.categories)}

    def __eq__(self, value: object) -> np.ndarray:  # type: ignore[override]
        code = self._lookup.get(str(value))
        if code is None:
            return np.zeros(self._codes.shape, dtype=bool)
        return self._codes == code

    __hash__ = None  # type: ignore[assignment]
