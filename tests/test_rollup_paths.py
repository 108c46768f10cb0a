"""The batch engine and the service's one-lead path agree value for value, for any declared spec and
any activity log (hypothesis: random definitions, random events around each lead's scoring time)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.features.rollups import rollups_for_lead, rollups_for_spec
from leadscore.spec import DatasetSpec, load_spec
from leadscore.spec.activity import Aggregation

TYPES = ["visit", "form", "webinar"]
DAY_MS = 86_400_000
SCORED_MS = 1_735_689_600_000  # 2025-01-01
SPEC = load_spec("synthetic")
LOG = SPEC.activity
assert LOG is not None


def _types() -> st.SearchStrategy[str | list[str]]:
    return st.one_of(
        st.sampled_from([*TYPES, "any"]),
        st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
    )


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Aggregation]:
    """One to five declared features of every kind, with or without a window, a filter, a decay."""
    out: dict[str, Aggregation] = {}
    for number in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["count", "returns", "distinct_days", "days_since_last", "days_since_first",
                                     "sum", "mean", "min", "max", "unique", "last"]))  # fmt: skip
        body: dict[str, Any] = {}
        if kind in ("count", "returns", "distinct_days", "days_since_last", "days_since_first"):
            body[kind] = draw(_types())
        else:
            body[kind] = "channel" if kind in ("unique", "last") else "amount"
            body["of"] = draw(_types())
        if draw(st.booleans()):
            body["days"] = draw(st.sampled_from([1, 7, 30, 90]))
        if draw(st.booleans()):
            body["where"] = {"channel": draw(st.sampled_from(["ads", ["ads", "mail"]]))}
        if kind in ("count", "sum") and draw(st.booleans()):
            body["half_life_days"] = draw(st.sampled_from([3, 14]))
        out[f"f{number}_{kind}"] = Aggregation.model_validate(body)
    return out


@st.composite
def logs(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """One to four leads' events: types, times from 120 days before to 10 days after the scoring
    time (later ones must be ignored), ties, and attributes that may be missing."""
    leads = []
    for _ in range(draw(st.integers(1, 4))):
        events = []
        for _ in range(draw(st.integers(0, 12))):
            events.append(
                {
                    "type": draw(st.sampled_from(TYPES)),
                    "time": SCORED_MS + draw(st.integers(-120, 10)) * DAY_MS // draw(st.sampled_from([1, 3])),
                    "amount": draw(st.one_of(st.none(), st.floats(-50, 500, allow_nan=False))),
                    "channel": draw(st.sampled_from(["ads", "mail", "web", None])),
                }
            )
        leads.append(events)
    return leads


def _batch(spec: DatasetSpec, leads: list[list[dict[str, Any]]], scored: list[int]) -> pd.DataFrame:
    assert LOG is not None and spec.id and spec.time
    rows = [(lead, e) for lead, events in enumerate(leads) for e in events]
    events = pd.DataFrame(
        {
            LOG.id: pd.Series([lead for lead, _ in rows], dtype="int64"),
            LOG.time: pd.to_datetime(pd.Series([e["time"] for _, e in rows], dtype="int64"), unit="ms"),
            LOG.type: pd.Series([e["type"] for _, e in rows], dtype=object),
            "amount": pd.Series([e["amount"] for _, e in rows], dtype="float64"),
            "channel": pd.Series([e["channel"] for _, e in rows], dtype=object),
        }
    )
    anchors = pd.DataFrame({spec.id: np.arange(len(leads)), spec.time: pd.to_datetime(scored, unit="ms")})
    return rollups_for_spec(events, anchors, spec)


def _same(a: Any, b: Any) -> bool:
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(definitions(), logs(), st.lists(st.integers(-5, 5), min_size=4, max_size=4))
def test_one_lead_through_the_service_path_equals_the_batch_engine(
    defs: dict[str, Aggregation], leads: list[list[dict[str, Any]]], shifts: list[int]
) -> None:
    spec = SPEC.model_copy(update={"engagement": defs})
    scored = [SCORED_MS + shifts[i] * DAY_MS for i in range(len(leads))]
    batch = _batch(spec, leads, scored)
    for lead, events in enumerate(leads):
        sent = [{**e, "time": pd.Timestamp(e["time"], unit="ms").isoformat() + "Z"} for e in events]
        one = rollups_for_lead(sent, scored[lead], spec)
        for name in defs:
            assert _same(one[name], batch[name].iloc[lead]), (
                name,
                defs[name],
                one[name],
                batch[name].iloc[lead],
            )
