"""Sales' accept/reject decisions in the store: imported in one transaction, each exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from leadscore.features import clean_text
from leadscore.spec.reasons import all_reasons
from leadscore.store.db import Store
from leadscore.store.schema import decisions

COLUMNS = ("lead_id", "decision", "reason", "decided_at", "mql_at", "rep")
# Sales' standard reasons (spec/reasons.py) and the spellings CRMs export them and decisions in
# (feedback import, the API, the pages).
REASON_SPELLINGS = {
    "not icp": "not ICP",
    "not_icp": "not ICP",
    "not-icp": "not ICP",
    "no icp": "not ICP",
    "not a fit": "not ICP",
    "duplicate": "duplicate",
    "dup": "duplicate",
    "duplicated": "duplicate",
    "bad data": "bad data",
    "bad_data": "bad data",
    "invalid data": "bad data",
    "student/research": "student/research",
    "student": "student/research",
    "research": "student/research",
    "student / research": "student/research",
    "competitor": "competitor",
}
DECISION_SPELLINGS = {
    "accepted": "accepted",
    "accept": "accepted",
    "sal": "accepted",
    "sql": "accepted",
    "rejected": "rejected",
    "reject": "rejected",
    "disqualified": "rejected",
}
CHUNK = 5_000  # rows per INSERT: bounded statements, one transaction


def add_decisions(store: Store, frame: pd.DataFrame) -> tuple[int, int]:
    """Add normalised decisions (``COLUMNS``) in one transaction; those already stored (same lead,
    decision and time) are left as they are. Returns how many were new and how many distinct
    decisions the frame held. Safe to run concurrently."""
    rows = _rows(frame)
    insert = (postgresql.insert if store.dialect == "postgresql" else sqlite.insert)(decisions)
    statement = insert.on_conflict_do_nothing(index_elements=["lead_id", "decision", "decided_at"])
    new = 0
    with store.write() as conn:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            result = conn.execute(statement.returning(decisions.c.id), chunk)
            new += len(result.all())
    return new, len(rows)


def count_decisions(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(decisions)).scalar_one())


def load_decisions(store: Store) -> pd.DataFrame:
    """Every stored decision, oldest first, in the shape the monitor and training read."""
    query = select(*(decisions.c[c] for c in COLUMNS)).order_by(
        decisions.c.decided_at, decisions.c.lead_id, decisions.c.decision
    )
    with store.read() as conn:
        records = conn.execute(query).all()
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return frame.astype(
        {
            "lead_id": "string",
            "decision": "string",
            "reason": "string",
            "rep": "string",
            "decided_at": "datetime64[ms]",
            "mql_at": "datetime64[ms]",
        }
    )


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Unique decisions as plain Python values (naive UTC datetimes, None for missing)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    unique = frame.loc[~decision_keys(frame).duplicated().to_numpy()]
    out = []
    for rec in unique[list(COLUMNS)].itertuples(index=False):
        out.append(
            {
                "lead_id": str(rec.lead_id),
                "decision": str(rec.decision),
                "reason": _text(rec.reason),
                "decided_at": _time(rec.decided_at),
                "mql_at": _time(rec.mql_at),
                "rep": _text(rec.rep),
                "imported_at": now,
            }
        )
    return out


def decision_keys(frame: pd.DataFrame) -> pd.Series:
    """One text key per decision: lead, decision and the decision time in milliseconds."""
    ms = frame["decided_at"].to_numpy(dtype="datetime64[ms]").astype(np.int64).astype(str)
    return (
        frame["lead_id"].astype(str)
        + "|"
        + frame["decision"].astype(str)
        + "|"
        + pd.Series(ms, index=frame.index)
    )


def _text(value: Any) -> str | None:
    return (
        None
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
        else str(value)
    )


def _time(value: Any) -> datetime | None:
    if value is None or value is pd.NaT or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


def decision_of(value: Any) -> str | None:
    """``accepted`` or ``rejected`` as a CRM or a rep spells it, or None."""
    return DECISION_SPELLINGS.get((clean_text(value) or "").casefold())


def standard_reason(value: Any, own: Sequence[str] = ()) -> str | None:
    """The standard reason (or one of the spec's ``own``) a CRM or a rep spells, None for none
    given, "?" for one neither standard nor the team's own."""
    text = clean_text(value)
    if text is None:
        return None
    folded = " ".join(text.split()).casefold()
    return REASON_SPELLINGS.get(folded) or next((r for r in own if r.casefold() == folded), "?")


def reasons_said(own: Sequence[str] = ()) -> str:
    """The reasons a rejection may give, for an error line."""
    return ", ".join(all_reasons(own))
