"""What was last written back to each CRM, per lead: the memory behind ``writeback --changed-only``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from leadscore.store.db import Store
from leadscore.store.schema import writebacks

CHUNK = 5_000  # rows per statement: bounded statements, one transaction


def last_written(store: Store, crm: str, lead_ids: list[str]) -> pd.DataFrame:
    """The last written P(SQL), MQL flag and grade of these leads for ``crm`` (leads never written
    are absent), indexed by lead id."""
    found: list[Any] = []
    columns = (writebacks.c.lead_id, writebacks.c.p_sql, writebacks.c.mql, writebacks.c.grade)
    with store.read() as conn:
        for start in range(0, len(lead_ids), CHUNK):
            chunk = lead_ids[start : start + CHUNK]
            query = select(*columns).where(writebacks.c.crm == crm, writebacks.c.lead_id.in_(chunk))
            found.extend(conn.execute(query).all())
    frame = pd.DataFrame.from_records(found, columns=["lead_id", "p_sql", "mql", "grade"])
    return frame.set_index("lead_id")


def record_written(store: Store, crm: str, rows: pd.DataFrame, written_at: datetime) -> int:
    """Remember what was just written (``rows``: lead_id, p_sql, mql, grade) in one transaction; a
    lead written before is updated. Returns how many rows were recorded."""
    records = [
        {
            "crm": crm,
            "lead_id": str(r.lead_id),
            "p_sql": float(r.p_sql),
            "mql": bool(r.mql),
            "grade": None if pd.isna(r.grade) else str(r.grade),
            "written_at": written_at,
        }
        for r in rows.itertuples(index=False)
    ]
    insert = (postgresql.insert if store.dialect == "postgresql" else sqlite.insert)(writebacks)
    statement = insert.on_conflict_do_update(
        index_elements=["crm", "lead_id"],
        set_={c: insert.excluded[c] for c in ("p_sql", "mql", "grade", "written_at")},
    )
    with store.write() as conn:
        for start in range(0, len(records), CHUNK):
            conn.execute(statement, records[start : start + CHUNK])
    return len(records)
