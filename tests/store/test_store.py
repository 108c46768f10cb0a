"""The store on SQLite and a real PostgreSQL: migrations, the score log, previous and trend, purge."""

from __future__ import annotations

import os
import signal
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
from sqlalchemy import inspect

from leadscore.errors import UserError
from leadscore.scoring.answer import trend_fields
from leadscore.store.db import database_url, migrate, open_store
from leadscore.store.decisions import add_decisions, count_decisions, load_decisions
from leadscore.store.schema import scores as score_table
from leadscore.store.scores import (
    Previous,
    latest,
    purge,
    served_scores,
    store_counts,
    write_scores,
)
from leadscore.store.writer import WRITER_NICE, LogView, PackedRows, ScoreWriter
from tests.helpers import free_port

T0 = datetime(2026, 11, 20, 9, 0)


def _row(lead: str, p: float, at: datetime, mql: bool = False, version: str = "v1") -> dict[str, object]:
    return {
        "lead_id": lead,
        "scored_at": at,
        "model_name": "synthetic",
        "model_version": version,
        "cutoff_version": "c1",
        "p_sql": p,
        "mql": mql,
        "grade": "B2",
        "fit": 0.1,
        "engagement": -0.2,
        "reasons": ["job_title"],
        "inputs": {"job_title": "CTO", "employee_count": 250},
        "request_id": None,
        "source": "api",
    }


def test_the_schema_is_migrated_once_and_can_go_down_and_up(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    store = open_store(database_url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"decisions", "scores", "latest_scores", "writebacks", "alembic_version"} <= tables
    assert migrate(store) == "0008"  # a no-op the second time
    config = Config()
    config.set_main_option("script_location", "src/leadscore/store/migrations")

    def indexes() -> set[str]:
        return {str(i["name"]) for i in inspect(store.engine).get_indexes("scores")}

    with store.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")  # a store made by the first release
    assert indexes() == {"ix_scores_lead_time", "ix_scores_scored_at"}
    with store.write() as conn:  # a row as the first release wrote it (latest_scores had no inputs)
        conn.execute(score_table.insert(), [_row("7", 0.2, T0)])
    assert migrate(store) == "0008"  # upgraded, its rows kept
    assert indexes() == {"ix_scores_scored_at"}  # the per-lead index, costly on every write, is gone
    assert store_counts(store)["scores"] == 1
    with store.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert not {"decisions", "scores", "writebacks"} & set(inspect(store.engine).get_table_names())
    assert migrate(store) == "0008"
    assert {"decisions", "scores", "latest_scores"} <= set(inspect(store.engine).get_table_names())


def test_the_migrations_build_the_tables_the_code_declares(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from leadscore.store.schema import metadata

    store = open_store(database_url)
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_score_log_keeps_each_leads_latest_answer(database_url: str) -> None:
    store = open_store(database_url)
    write_scores(store, [_row("7", 0.20, T0), _row("8", 0.50, T0, mql=True)])
    # A batch with the same lead twice, and an older answer arriving late: the newest wins.
    write_scores(store, [_row("7", 0.31, T0 + timedelta(hours=2)), _row("7", 0.28, T0 + timedelta(hours=1))])
    write_scores(store, [_row("7", 0.05, T0 - timedelta(days=1))])
    found = latest(store, ["7", "8", "9"])
    assert set(found) == {"7", "8"}
    assert found["7"].p_sql == 0.31 and found["7"].scored_at == T0 + timedelta(hours=2)
    assert store_counts(store)["scores"] == 5
    served = served_scores(store, T0)
    assert list(served["p_sql"]) == [0.20, 0.50, 0.28, 0.31]  # oldest first, from T0 on
    assert served.iloc[0]["inputs"] == {"job_title": "CTO", "employee_count": 250}

    assert trend_fields({"p_sql": 0.40, "mql": True}, found["7"], 0.05) == {
        "previous": {"p_sql": 0.31, "grade": "B2", "mql": False, "scored_at": "2026-11-20T11:00:00Z"},
        "trend": "improving",
        "crossed_cutoff": True,
    }
    assert trend_fields({"p_sql": 0.33, "mql": False}, found["7"], 0.05)["trend"] == "steady"
    assert trend_fields({"p_sql": 0.20, "mql": False}, found["7"], 0.05)["trend"] == "declining"


def test_store_info_says_what_the_store_holds(database_url: str) -> None:
    import json

    from typer.testing import CliRunner

    from leadscore.cli import app

    write_scores(open_store(database_url), [_row("1", 0.1, T0), _row("2", 0.2, T0 + timedelta(days=1))])
    result = CliRunner().invoke(app, ["store", "info", "--store", database_url, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["revision"], info["scores"], info["leads_scored"], info["decisions"]) == ("0008", 2, 2, 0)
    assert info["first_score"] == "2026-11-20T09:00:00" and info["last_score"] == "2026-11-21T09:00:00"


def test_purge_by_age_and_by_lead(database_url: str) -> None:
    store = open_store(database_url)
    write_scores(store, [_row("1", 0.1, T0 - timedelta(days=400)), _row("2", 0.2, T0), _row("3", 0.3, T0)])
    old = T0 - timedelta(days=400)
    decided = pd.DataFrame(
        {
            "lead_id": ["1", "2", "2", "3"],
            "decision": ["accepted", "rejected", "accepted", "accepted"],
            "reason": [None, "not ICP", None, None],
            "decided_at": [old, T0, T0 + timedelta(hours=1), T0],
            "mql_at": [old, T0, T0, T0],
            "rep": ["ana", "bo", "bo", "cy"],
        }
    )
    assert add_decisions(store, decided) == (4, 4)
    # Retention takes old answers; sales' decisions are training labels and stay, old or not.
    assert purge(store, before=T0 - timedelta(days=365)) == {"scores": 1, "latest_scores": 1, "decisions": 0}
    assert set(latest(store, ["1", "2", "3"])) == {"2", "3"} and count_decisions(store) == 4
    # A deletion request takes every row of that lead, and only of that lead.
    assert purge(store, lead="2") == {"scores": 1, "latest_scores": 1, "decisions": 2}
    assert set(latest(store, ["1", "2", "3"])) == {"3"} and store_counts(store)["scores"] == 1
    assert sorted(load_decisions(store)["lead_id"]) == ["1", "3"]


def test_the_writer_batches_rows_and_answers_previous_before_they_are_written(database_url: str) -> None:
    writer = ScoreWriter(database_url, capacity=100)
    writer.start()
    rows = [_row(str(i), i / 100, T0) for i in range(40)]
    assert writer.submit(rows)
    assert writer.previous(["3"])["3"].p_sql == 0.03  # queued or written: either way it answers
    assert writer.flush(30) and writer.written == 40 and writer.dropped == 0
    found = writer.previous(["39", "5", "nobody"])  # written: read back on the plain driver connection
    assert set(found) == {"39", "5"} and found["39"].p_sql == 0.39 and found["39"].scored_at == T0
    assert not writer.submit([_row("x", 0.5, T0)] * 101)  # over capacity: dropped and counted
    assert writer.dropped == 101
    writer.close()
    assert latest(open_store(database_url), ["39"])["39"].p_sql == 0.39


def test_rows_the_database_refuses_never_take_their_batch_with_them(database_url: str) -> None:
    """A value the database will not keep (an id past its column on PostgreSQL, a missing grade on
    both) costs only its own row: the batch is halved until the refused rows stand alone."""
    writer = ScoreWriter(database_url, capacity=1_000)
    writer.start()
    rows = [_row(str(i), i / 1000, T0) for i in range(300)]
    rows[17]["lead_id"] = "z" * 300  # the door refuses these; the writer must survive one anyway
    rows[230]["grade"] = None
    assert writer.submit(rows) and writer.flush(30)
    postgres = database_url.startswith("postgresql")
    refused = {"z" * 300, "230"} if postgres else {"230"}  # SQLite keeps text of any length
    assert (writer.written, writer.dropped) == (300 - len(refused), len(refused))
    ids = [str(r["lead_id"]) for r in rows]
    assert set(latest(open_store(database_url), ids)) == set(ids) - refused
    writer.close()


def test_a_batch_scorer_finds_answers_still_queued_and_the_rest_in_the_store(tmp_path: Path) -> None:
    """A scorer gets the serving process's queued answers (``view``) and the store's URL: a lead
    whose rows are not written yet gets its newest queued answer, another the store's."""
    from leadscore.service.scorer_process import previous_from

    url = f"sqlite:///{tmp_path}/log.db"
    write_scores(open_store(url), [_row("3", 0.33, T0, mql=True)])
    writer = ScoreWriter(url, capacity=1_000)
    writer.start()
    assert writer.tried.wait(60)
    blocker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer process waits for the lock: its rows stay queued
    try:
        later = T0 + timedelta(seconds=1)
        assert writer.submit(PackedRows.pack([_row("1", 0.1, T0), _row("1", 0.4, later), _row("2", 0.2, T0)]))
        found = previous_from(writer.view())(["1", "2", "3", "nobody"])
        assert {k: v[:4] for k, v in found.items()} == {
            "1": Previous(0.4, "B2", False, later)[:4],
            "2": Previous(0.2, "B2", False, T0)[:4],
            "3": Previous(0.33, "B2", True, T0)[:4],  # from the store
        }
        # with the fields they were scored with (queued: JSON text; from the store: as its driver reads JSON)
        inputs = {"job_title": "CTO", "employee_count": 250}
        assert all(
            orjson.loads(v.inputs) == inputs if isinstance(v.inputs, str) else v.inputs == inputs
            for v in found.values()
        )
        assert writer.written == 0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert writer.flush(60) and writer.written == 3
    writer.close()
    assert previous_from(LogView(b"", url))(["1"])["1"].p_sql == 0.4  # written: now from the store


def test_the_log_is_written_by_a_lower_priority_process_replaced_when_it_dies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    writer = ScoreWriter(url, capacity=1_000)
    writer.start()
    assert writer.submit([_row("1", 0.1, T0)]) and writer.flush(60) and writer.written == 1
    first = writer._process
    assert first is not None and first.pid != os.getpid()
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + WRITER_NICE)
    assert os.getpriority(os.PRIO_PROCESS, first.pid) == expected  # the scoring comes first
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    # Rows packed elsewhere (as a batch scorer packs them) are forwarded as they are.
    assert writer.submit(PackedRows.pack([_row("2", 0.2, T0), _row("1", 0.3, T0 + timedelta(seconds=1))]))
    assert writer.flush(60)
    assert (writer.written, writer.dropped, writer.restarted) == (3, 0, 1)
    assert writer._process is not None and writer._process.pid != first.pid
    found = writer.previous(["1", "2"])
    assert (found["1"].p_sql, found["2"].p_sql) == (0.3, 0.2)
    writer.close()
    assert writer._process is not None and not writer._process.is_alive()  # closed with the writer
    assert store_counts(open_store(url))["scores"] == 3


def test_a_writer_whose_database_is_down_drops_and_counts() -> None:
    writer = ScoreWriter(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone", capacity=100)
    writer.start()
    assert writer.submit([_row("1", 0.5, T0), _row("2", 0.4, T0)])
    assert writer.flush(30)
    assert (writer.written, writer.dropped) == (0, 2)
    assert writer.previous(["1"]) == {}  # no answer from a store that is down, and no wait
    writer.close()


def test_a_store_that_cannot_be_opened_is_one_line(tmp_path) -> None:
    with pytest.raises(
        UserError, match=r"^database postgresql\+psycopg://nobody:\*\*\*@127.0.0.1:\d+/gone: cannot be opened"
    ):
        open_store(f"postgresql+psycopg://nobody:secret@127.0.0.1:{free_port()}/gone")
    with pytest.raises(UserError, match="leadscore store migrate-feedback"):
        database_url(tmp_path / "feedback.parquet")
    assert database_url(tmp_path / "x.db") == f"sqlite:///{tmp_path}/x.db"
