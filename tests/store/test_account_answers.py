"""Each account's last answer on SQLite and a real PostgreSQL: the newest kept, its qualified run's
start kept while it stays qualified, and the qualified accounts best first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leadscore.store.account_answers import account_row, qualified_accounts, write_account_answers
from leadscore.store.db import open_store

T0 = datetime(2026, 12, 1, 9, 0)


def _answer(account: str, p: float, at: datetime, qualified: bool, **extra: Any) -> dict[str, Any]:
    return {
        "account_id": account,
        "scored_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "p_opportunity": p,
        "qualified": qualified,
        "grade": "A1" if p > 0.5 else "B2",
        "reasons": ["3 people active in the last 30 days (+12.0 pp)"],
        "contacts_engaged": 3,
        "roles_engaged": ["economic buyer"],
        "roles_missing": ["finance"],
        "model_version": "acc-1",
        **extra,
    }


def _write(store: Any, *answers: dict[str, Any], source: str = "api") -> int:
    return write_account_answers(store, [account_row(a, source, T0) for a in answers])


def test_the_newest_answer_is_kept_with_its_qualified_run(database_url: str) -> None:
    store = open_store(database_url)
    assert _write(store, _answer("A", 0.7, T0, True), _answer("A", 0.2, T0 - timedelta(days=1), False)) == 1
    _write(store, _answer("A", 0.8, T0 + timedelta(days=1), True))
    _write(store, _answer("A", 0.1, T0 - timedelta(days=3), False))  # older: changes nothing
    (row,) = qualified_accounts(store).rows
    assert (row.p_opportunity, row.qualified_since, row.roles_missing) == (0.8, T0, ["finance"])
    _write(store, _answer("A", 0.1, T0 + timedelta(days=2), False))
    assert qualified_accounts(store).total == 0
    _write(store, _answer("A", 0.9, T0 + timedelta(days=3), True))
    assert qualified_accounts(store).rows[0].qualified_since == T0 + timedelta(days=3)


def test_qualified_accounts_best_first_by_grade_and_from_a_score_files_rows(database_url: str) -> None:
    store = open_store(database_url)
    batch_row = {  # a row as `score` writes it for an account model
        "account_id": 17,
        "scored_at": "2026-12-01T00:00:00",
        "p_opportunity": 0.66,
        "qualified": "True",  # as a CSV gives it back
        "grade": "A2",
        "reason_1": "Visited pricing (+4.0 pp)",
        "reason_2": "",
        "contacts_engaged": 2,
        "roles_engaged": "champion, user",
        "roles_missing": "",
        "model_version": "acc-1",
    }
    _write(store, _answer("B", 0.55, T0, True), _answer("C", 0.95, T0, True), _answer("D", 0.3, T0, False))
    _write(store, {**batch_row, "account_id": "E", "qualified": "False"}, source="batch")
    _write(store, batch_row, source="batch")
    page = qualified_accounts(store)
    assert [r.account_id for r in page.rows] == ["C", "17", "B"] and page.grades == ["A1", "A2"]
    seventeen = page.rows[1]
    assert seventeen.reasons == ["Visited pricing (+4.0 pp)"] and seventeen.roles_engaged == [
        "champion",
        "user",
    ]
    assert seventeen.roles_missing == []
    assert [r.account_id for r in qualified_accounts(store, grade="A2").rows] == ["17"]
