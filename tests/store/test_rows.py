"""The score log's rows: made as value tuples (the fast path) they say exactly what the plain
definition (a mapping per row, the model's fields looked up one by one) says."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.features.values import lead_key
from leadscore.scoring.answer import log_rows
from leadscore.store.scores import ROW_FIELDS, plain_value
from leadscore.store.writer import PackedRows

T0 = datetime(2026, 11, 20, 9, 0)
FIELDS = ["job_title", "employee_count", "web_visits_30d", "region", "demo_requests", "last_seen"]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
    st.builds(pd.Timestamp, st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1))),
)
records = st.lists(st.dictionaries(st.sampled_from([*FIELDS, "email", "lead_id"]), values), max_size=8)
reasons = st.fixed_dictionaries(
    {},
    optional={
        "positive": st.lists(
            st.fixed_dictionaries({"field": st.sampled_from(FIELDS), "text": st.text(max_size=6)}), max_size=5
        ),
        "negative": st.lists(st.fixed_dictionaries({"field": st.sampled_from(FIELDS)}), max_size=3),
    },
)
answers = st.fixed_dictionaries(
    {
        "p_sql": st.floats(0, 1),
        "mql": st.booleans(),
        "grade": st.sampled_from(["A1", "B2", "D4"]),
    },
    optional={
        "lead_id": st.one_of(st.none(), st.integers(0, 10**9), st.floats(0, 1e6), st.text(max_size=8)),
        "model_version": st.sampled_from(["3", None]),
        "segment": st.sampled_from(["EMEA", None, ""]),
        "respond_within": st.sampled_from(["1h", "24h"]),
        "cutoff_version": st.sampled_from(["c1", None]),
        "reasons": st.one_of(st.none(), reasons),
        "fit": st.one_of(st.none(), st.fixed_dictionaries({"log_odds": st.floats(-5, 5)})),
        "engagement": st.one_of(
            st.none(), st.just({}), st.fixed_dictionaries({"log_odds": st.floats(-5, 5)})
        ),
    },
)


def _plain_rows(
    answers: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]], fields: Sequence[str]
) -> list[dict[str, Any]]:
    """The rows by their plain definition (a mapping per row, as they were made before the tuples)."""
    out = []
    for answer, record in zip(answers, records, strict=True):
        inputs = {f: record.get(f) for f in fields}
        if not {type(v) for v in inputs.values()} <= {type(None), bool, int, float, str}:
            inputs = {f: plain_value(v) for f, v in inputs.items()}
        chosen = answer.get("reasons") or {}
        out.append(
            {
                "lead_id": lead_key(answer.get("lead_id")),
                "scored_at": T0,
                "model_name": "synthetic",
                "model_version": str(answer.get("model_version") or ""),
                "cutoff_version": answer.get("cutoff_version"),
                "p_sql": float(answer["p_sql"]),
                "mql": bool(answer["mql"]),
                "grade": str(answer["grade"]),
                "fit": (answer.get("fit") or {}).get("log_odds"),
                "engagement": (answer.get("engagement") or {}).get("log_odds"),
                "reasons": orjson.dumps(
                    [r["field"] for side in ("positive", "negative") for r in chosen.get(side, [])]
                ).decode(),
                "inputs": orjson.dumps(inputs).decode(),
                "request_id": "req-1",
                "source": "api",
                "top_reasons": orjson.dumps([r.get("text") for r in chosen.get("positive", [])[:3]]).decode(),
                "segment": answer.get("segment") or None,
                "respond_within": answer.get("respond_within"),
                "lead_source": _short(record.get("region"), 200),
                "display": _display(record),
                "activity": None,  # no events sent (a checked lead's RECENT_KEY: tested on a real server)
            }
        )
    return out


def _short(value: Any, limit: int) -> str | None:
    plain = plain_value(value)
    return None if plain is None or plain == "" else str(plain)[:limit]


def _display(record: Mapping[str, Any]) -> str | None:
    shown = {c: v for c in ("email", "lead_id") if (v := _short(record.get(c), 500)) is not None}
    return orjson.dumps(shown).decode() if shown else None


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n_fields=st.integers(0, len(FIELDS)))
def test_rows_made_as_tuples_say_what_the_plain_definition_says(data: st.DataObject, n_fields: int) -> None:
    leads = data.draw(records)
    given_answers = data.draw(st.lists(answers, min_size=len(leads), max_size=len(leads)))
    fields = FIELDS[:n_fields]  # none, one (no itemgetter of one name) and several
    kwargs: dict[str, Any] = {
        "model_name": "synthetic",
        "fields": fields,
        "source": "api",
        "request_id": "req-1",
        "shown": ["email", "lead_id"],
        "source_field": "region",
    }
    expected = _plain_rows(given_answers, leads, fields)
    tuples = log_rows(given_answers, leads, scored_at=T0, **kwargs)
    assert [dict(zip(ROW_FIELDS, t, strict=True)) for t in tuples] == expected
    packed = PackedRows.from_rows(tuples)
    assert packed.rows() == expected == PackedRows.pack(expected).rows()
    assert packed.answers == [
        (r["lead_id"], r["p_sql"], r["grade"], r["mql"], T0, r["inputs"]) for r in expected
    ]


def test_a_lead_without_some_fields_logs_them_as_null_and_nan_as_null() -> None:
    answer = {"p_sql": 0.4, "mql": False, "grade": "B2", "lead_id": 7.0}
    (values,) = log_rows(
        [answer],
        [{"job_title": "CTO", "employee_count": math.nan, "email": "a@b.c"}],
        model_name="synthetic",
        fields=["job_title", "employee_count", "region"],
        source="batch",
        scored_at=T0,
    )
    row: dict[str, Any] = dict(zip(ROW_FIELDS, values, strict=True))
    assert row["lead_id"] == "7"
    assert orjson.loads(row["inputs"]) == {"job_title": "CTO", "employee_count": None, "region": None}


def test_a_lead_sent_with_events_keeps_its_last_twenty_as_sent() -> None:
    from leadscore.scoring.answer import RECENT_EVENTS, RECENT_KEY

    events = [
        {"type": "web_visit", "time": f"2026-11-{d:02d}T10:00:00Z", "score": math.nan} for d in range(1, 26)
    ]
    answer = {"p_sql": 0.4, "mql": False, "grade": "B2", "lead_id": 7}
    (values,) = log_rows(
        [answer], [{RECENT_KEY: events}], model_name="m", fields=["job_title"], source="api", scored_at=T0
    )
    kept = orjson.loads(str(dict(zip(ROW_FIELDS, values, strict=True))["activity"]))
    assert len(kept) == RECENT_EVENTS == 20 and kept[0]["time"] == "2026-11-06T10:00:00Z"
    assert kept[-1] == {"type": "web_visit", "time": "2026-11-25T10:00:00Z", "score": None}
