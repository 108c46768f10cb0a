"""Engagement events: drawn from a lead's intent before and after its scoring time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.data.synthetic.tables import dict_array, dict_array_nullable, ts_array
from leadscore.data.synthetic.vocab import CONTENT

_EVENT_PLAN = (
    # type, stage, base rate per lead before scoring, intent slope, post-scoring multiplier
    ("web_visit", "", 2.2, 0.55, 0.6),
    ("pricing_page_view", "", 0.35, 0.9, 0.8),
    ("webinar_registration", "", 0.25, 0.5, 0.3),
    ("webinar_attendance", "", 0.0, 0.0, 0.3),  # drawn from registrations
    ("content_download", "top", 0.45, 0.3, 0.3),
    ("content_download", "mid", 0.22, 0.7, 0.4),
    ("content_download", "bottom", 0.08, 1.0, 0.6),
    ("email_open", "", 2.5, 0.25, 1.0),
    ("email_click", "", 0.5, 0.5, 0.8),
    ("demo_request", "", 0.025, 1.3, 1.5),
    ("consultation_request", "", 0.03, 1.0, 1.0),
)


TYPE_INDEX = {
    "web_visit": 0,
    "pricing_page_view": 1,
    "webinar_registration": 2,
    "webinar_attendance": 3,
    "content_download": 4,
    "email_open": 5,
    "email_click": 6,
    "demo_request": 7,
    "consultation_request": 8,
}


TYPE_NAMES = tuple(sorted(TYPE_INDEX, key=TYPE_INDEX.__getitem__))
WRITTEN_TYPES = (*TYPE_NAMES, "meeting")  # sales meetings exist only with accounts (buying.py)


def draw_events(
    rng: np.random.Generator,
    intent: np.ndarray,
    fitness: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    skew: np.ndarray,
    multiplier: np.ndarray,
    post: bool,
    drift: bool,
) -> dict[str, np.ndarray]:
    """Timestamped events for each lead in [start, end); ``skew`` > 1 crowds them near ``end``."""
    leads_out: list[np.ndarray] = []
    types_out: list[np.ndarray] = []
    stages_out: list[np.ndarray] = []
    titles_out: list[np.ndarray] = []
    span = (end - start).astype(np.float64)
    registrations: np.ndarray | None = None
    for etype, stage, base, slope, post_mult in _EVENT_PLAN:
        if etype == "webinar_attendance":
            assert registrations is not None
            show = 0.45 if not drift else 0.3
            counts = rng.binomial(registrations, show)
        else:
            rate = base * np.exp(slope * intent + 0.25 * fitness) * multiplier
            if post:
                rate = rate * post_mult
            if drift and etype == "pricing_page_view":
                rate = rate * 1.8 + 0.4  # a redesigned site sends everyone past the pricing page
            counts = rng.poisson(np.minimum(rate, 40.0))
            if etype == "webinar_registration":
                registrations = counts
        idx = np.repeat(np.arange(len(intent), dtype=np.int64), counts)
        leads_out.append(idx)
        types_out.append(np.full(idx.size, TYPE_INDEX[etype], dtype=np.int8))
        stage_code = {"": -1, "top": 0, "mid": 1, "bottom": 2}[stage]
        stages_out.append(np.full(idx.size, stage_code, dtype=np.int8))
        titles_out.append(
            rng.integers(0, 3, idx.size).astype(np.int8) if stage else np.full(idx.size, -1, np.int8)
        )
    lead_idx = np.concatenate(leads_out)
    u = rng.random(lead_idx.size)
    frac = u ** (1.0 / skew[lead_idx])
    when = start[lead_idx] + (frac * span[lead_idx]).astype(np.int64)
    return {
        "lead": lead_idx,
        "ts": when,
        "type": np.concatenate(types_out),
        "stage": np.concatenate(stages_out),
        "title": np.concatenate(titles_out),
    }


def events_frame(ev: dict[str, np.ndarray], lead_ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": lead_ids[ev["lead"]],
            "occurred_at": ev["ts"].astype("datetime64[ms]"),
            "event_type": pd.Categorical.from_codes(ev["type"], categories=list(TYPE_NAMES)),
            "funnel_stage": pd.Categorical.from_codes(ev["stage"], categories=["top", "mid", "bottom"]),
        }
    )


def arrow_events_table(ev: dict[str, np.ndarray], lead_ids: np.ndarray) -> pa.Table:
    order = np.lexsort((ev["type"], ev["ts"], ev["lead"]))
    lead = ev["lead"][order]
    stage = ev["stage"][order]
    title = ev["title"][order]
    title_code = np.where(stage >= 0, stage * 3 + title, -1)
    titles = tuple(t for s in ("top", "mid", "bottom") for t in CONTENT[s])
    return pa.table(
        {
            "event_id": pa.array(np.arange(order.size, dtype=np.int64) + 1),
            "lead_id": pa.array(lead_ids[lead]),
            "occurred_at": ts_array(ev["ts"][order]),
            "event_type": dict_array(ev["type"][order], WRITTEN_TYPES),
            "funnel_stage": dict_array_nullable(stage, ("top", "mid", "bottom")),
            "content_title": dict_array_nullable(title_code.astype(np.int16), titles),
        }
    )
