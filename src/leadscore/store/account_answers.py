"""Each account's last logged answer (the account model's: ``POST /v1/accounts/score``, a lead's
account answer on ``/v1/score``, ``score --log`` with an account model) and the qualified accounts
the account queue page lists, best first."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from leadscore.features.values import flag_of, is_missing, lead_key
from leadscore.store.db import Store
from leadscore.store.queue import PAGE_ROWS
from leadscore.store.schema import latest_accounts


@dataclass(frozen=True)
class AccountRow:
    """An account's last answer as the page shows it."""

    account_id: str
    scored_at: datetime
    p_opportunity: float
    grade: str
    reasons: list[str]
    contacts_engaged: int | None
    roles_engaged: list[str]
    roles_missing: list[str]
    qualified_since: datetime | None
    model_version: str


@dataclass(frozen=True)
class AccountPage:
    rows: list[AccountRow]
    total: int
    page: int
    pages: int
    grades: list[str]


def account_row(answer: Mapping[str, Any], source: str, logged_at: datetime) -> dict[str, Any]:
    """The stored row of one account answer (``account_answer``'s keys, or a score file's row whose
    lists are text joined by ", " and whose reasons are ``reason_k`` columns)."""
    reasons = answer.get("reasons")
    if reasons is None:
        reasons = [answer[k] for k in sorted(answer) if k.startswith("reason_") and _given(answer[k])]
    return {
        "account_id": lead_key(answer.get("account_id")),
        "scored_at": _utc(answer["scored_at"]),
        "logged_at": logged_at,
        "p_opportunity": float(answer["p_opportunity"]),
        "qualified": bool(flag_of(answer["qualified"])),
        "grade": str(answer["grade"]),
        "reasons": [str(r) for r in reasons],
        "contacts_engaged": None
        if not _given(answer.get("contacts_engaged"))
        else int(answer["contacts_engaged"]),
        "roles_engaged": _names(answer.get("roles_engaged")),
        "roles_missing": _names(answer.get("roles_missing")),
        "model_version": str(answer.get("model_version") or ""),
        "source": source,
    }


def _utc(value: Any) -> datetime:
    """A time as the store keeps it: naive UTC."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def _given(value: Any) -> bool:
    return not is_missing(value) and value != ""


def _names(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [r for r in str(value).split(", ") if r] if _given(value) else []


def write_account_answers(store: Store, rows: Sequence[Mapping[str, Any]]) -> int:
    """Upsert ``account_row`` rows in one transaction: each account's newest answer kept (an older
    one never overwrites it), its qualified run's start kept while it stays qualified."""
    newest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        key = row["account_id"]
        if key and (key not in newest or row["scored_at"] >= newest[key]["scored_at"]):
            newest[key] = row
    if not newest:
        return 0
    values = [{**r, "qualified_since": r["scored_at"] if r["qualified"] else None} for r in newest.values()]
    insert = (sqlite.insert if store.dialect == "sqlite" else postgresql.insert)(latest_accounts)
    excluded = insert.excluded
    kept = case(
        (excluded.qualified.is_(False), None),
        else_=func.coalesce(latest_accounts.c.qualified_since, excluded.qualified_since),
    )
    updates = {c.name: excluded[c.name] for c in latest_accounts.columns if c.name != "account_id"}
    statement = insert.on_conflict_do_update(
        index_elements=[latest_accounts.c.account_id],
        set_={**updates, "qualified_since": kept},
        where=latest_accounts.c.scored_at <= excluded.scored_at,
    )
    with store.write() as conn:
        for start in range(0, len(values), 2_000):
            conn.execute(statement, values[start : start + 2_000])
    return len(values)


def qualified_accounts(store: Store, grade: str | None = None, page: int = 1) -> AccountPage:
    """The qualified accounts (their last answer over the account cutoff), best first."""
    open_ = latest_accounts.c.qualified_since.isnot(None)
    with store.read() as conn:
        grades = sorted(
            str(g) for (g,) in conn.execute(select(latest_accounts.c.grade).where(open_).distinct())
        )
        where = [open_, *([latest_accounts.c.grade == grade] if grade else [])]
        total = int(
            conn.execute(select(func.count()).select_from(latest_accounts).where(*where)).scalar_one()
        )
        pages = max(1, math.ceil(total / PAGE_ROWS))
        page = min(max(1, page), pages)
        query = (
            select(latest_accounts)
            .where(*where)
            .order_by(latest_accounts.c.p_opportunity.desc(), latest_accounts.c.account_id)
            .limit(PAGE_ROWS)
            .offset((page - 1) * PAGE_ROWS)
        )
        rows = [_row(r) for r in conn.execute(query).mappings()]
    return AccountPage(rows, total, page, pages, grades)


def _row(r: Mapping[Any, Any]) -> AccountRow:
    return AccountRow(
        account_id=str(r["account_id"]),
        scored_at=r["scored_at"],
        p_opportunity=float(r["p_opportunity"]),
        grade=str(r["grade"]),
        reasons=[str(x) for x in r["reasons"] or []],
        contacts_engaged=r["contacts_engaged"],
        roles_engaged=[str(x) for x in r["roles_engaged"] or []],
        roles_missing=[str(x) for x in r["roles_missing"] or []],
        qualified_since=r["qualified_since"],
        model_version=str(r["model_version"]),
    )
