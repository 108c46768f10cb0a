"""The score log: every answer handed out (ids and scores, no names or emails), each lead's latest
answer for ``previous`` and ``trend``, the served traffic for monitoring, and retention."""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url

from leadscore.features.values import lead_key
from leadscore.store.db import Store, error_line
from leadscore.store.schema import decisions, latest_scores, scores

CHUNK = 2_000


class Previous(NamedTuple):
    """A lead's last logged answer (and the model's fields as they were then, JSON text or a
    mapping; None for a row logged before they were kept)."""

    p_sql: float
    grade: str
    mql: bool
    scored_at: datetime
    inputs: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_sql": self.p_sql,
            "grade": self.grade,
            "mql": self.mql,
            "scored_at": _iso_z(self.scored_at),
        }


@functools.lru_cache(maxsize=256)
def _iso_z(value: datetime) -> str:
    """A stored (naive UTC) time as the API writes it (remembered: a batch's rows share one time, so
    the previous answers of a batch scored again mostly do too)."""
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def now_utc() -> datetime:
    """The time an answer is logged: naive UTC (the store keeps UTC everywhere)."""
    return datetime.now(UTC).replace(tzinfo=None)


def plain_value(value: Any) -> Any:
    """A value as JSON keeps it (numbers, text, booleans; anything else as text; NaN as null)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    return str(value)


class ScoreRow(NamedTuple):
    """One row of the score log, named as the ``scores`` table's columns, in their order."""

    lead_id: str  # the lead's key (``lead_key``): '' for a lead sent without an id
    scored_at: datetime  # naive UTC
    model_name: str
    model_version: str
    cutoff_version: str | None
    p_sql: float
    mql: bool
    grade: str
    fit: float | None  # the fit part in log-odds
    engagement: float | None  # the engagement part in log-odds
    reasons: str  # JSON text: the reasons' fields, positive then negative
    inputs: str  # JSON text: the model's own fields as the lead was sent
    request_id: str | None
    source: str  # "api" or "batch"
    # Kept for the pages in ``latest_scores`` only (never in ``scores``): see migration 0006.
    top_reasons: str | None = None  # JSON text: the texts of the top reasons for SQL
    segment: str | None = None
    respond_within: str | None = None  # "1h" or "24h"
    lead_source: str | None = None  # the spec's ``source`` field as sent
    display: str | None = None  # JSON text: the spec's ``display`` fields as sent
    activity: str | None = None  # JSON text: the last events sent with the lead (its timeline)


ROW_FIELDS = ScoreRow._fields
SCORE_COLUMNS = ROW_FIELDS[: ROW_FIELDS.index("top_reasons")]  # the ``scores`` table's columns
LATEST_COLUMNS = (
    "lead_id",
    "scored_at",
    "p_sql",
    "mql",
    "grade",
    "model_version",
    "inputs",
    "top_reasons",
    "segment",
    "respond_within",
    "lead_source",
    "display",
    "activity",
)
CLOCK_COLUMNS = ("mql_at", "due_at", "history")  # made from the row by ``_clock``
HISTORY_POINTS = 40  # P(SQL) points a lead's ``history`` keeps
POINT_CHARS = 17  # one point: epoch seconds (10 digits) and P(SQL) in millionths (7 digits)
RESPOND_HOURS = {"1h": 1, "24h": 24}
_JSON = frozenset({"reasons", "inputs", "top_reasons", "display", "activity"})
_LEAD, _AT = ROW_FIELDS.index("lead_id"), ROW_FIELDS.index("scored_at")
lead_of = operator.itemgetter(_LEAD)  # a row tuple's lead key
_JSON_AT = tuple(i for i, c in enumerate(SCORE_COLUMNS) if c in _JSON)  # the scores table's JSON columns
_latest_values = operator.itemgetter(*(ROW_FIELDS.index(c) for c in LATEST_COLUMNS))
_MQL, _P, _RESPOND = ROW_FIELDS.index("mql"), ROW_FIELDS.index("p_sql"), ROW_FIELDS.index("respond_within")


def score_tuple(row: Mapping[str, Any]) -> ScoreRow:
    """A log row given as a mapping of ``ROW_FIELDS``, as a ``ScoreRow`` (a field left out is null)."""
    return ScoreRow._make(row.get(c) for c in ROW_FIELDS)


def _statements(dialect: str) -> tuple[str, str]:
    """The two statements of a log write, in the driver's own parameter style. Both databases take
    the same upsert; an older answer never overwrites a newer one. The upsert keeps the clock of a
    lead still over the cutoff (``mql_at``; ``due_at`` only moves earlier: a demo request while it
    waits), keeps the fields before as ``previous_inputs`` and appends the point to ``history``."""
    mark = "?" if dialect == "sqlite" else "%s"

    def marks(columns: Sequence[str]) -> str:
        return ", ".join(
            f"CAST({mark} AS JSON)" if c in _JSON and dialect == "postgresql" else mark for c in columns
        )

    insert = f"INSERT INTO scores ({', '.join(SCORE_COLUMNS)}) VALUES ({marks(SCORE_COLUMNS)})"
    keep = HISTORY_POINTS * POINT_CHARS
    tail = (
        f"substr(COALESCE(latest_scores.history, '') || excluded.history, -{keep})"
        if dialect == "sqlite"
        else f"right(COALESCE(latest_scores.history, '') || excluded.history, {keep})"
    )
    updates = ", ".join(
        [
            "previous_inputs = latest_scores.inputs",
            *(f"{c} = excluded.{c}" for c in LATEST_COLUMNS[1:] if c != "activity"),
            "activity = COALESCE(excluded.activity, latest_scores.activity)",  # an answer sent without events
            "mql_at = CASE WHEN excluded.mql_at IS NULL THEN NULL "
            "ELSE COALESCE(latest_scores.mql_at, excluded.mql_at) END",
            "due_at = CASE WHEN excluded.due_at IS NULL THEN NULL "
            "WHEN latest_scores.due_at IS NULL OR excluded.due_at < latest_scores.due_at "
            "THEN excluded.due_at ELSE latest_scores.due_at END",
            f"history = {tail}",
        ]
    )
    columns = (*LATEST_COLUMNS, *CLOCK_COLUMNS)
    upsert = (
        f"INSERT INTO latest_scores ({', '.join(columns)}) VALUES ({marks(columns)}) "
        f"ON CONFLICT (lead_id) DO UPDATE SET {updates} WHERE latest_scores.scored_at <= excluded.scored_at"
    )
    return insert, upsert


def history_point(at: datetime, p_sql: float) -> str:
    """One point of a lead's ``history``: fixed width, so the upsert keeps whole points."""
    seconds = int(at.replace(tzinfo=UTC).timestamp())
    return f"{max(0, seconds):010d}{min(9_999_999, max(0, round(p_sql * 1_000_000))):07d}"


def history_points(text: str | None) -> list[tuple[datetime, float]]:
    """A ``history`` column's points, oldest first (naive UTC times and P(SQL))."""
    out = []
    for start in range(0, len(text or "") - POINT_CHARS + 1, POINT_CHARS):
        chunk = (text or "")[start : start + POINT_CHARS]
        if chunk.isdigit():
            at = datetime.fromtimestamp(int(chunk[:10]), UTC).replace(tzinfo=None)
            out.append((at, int(chunk[10:]) / 1_000_000))
    return out


def _clock(row: tuple[Any, ...]) -> tuple[datetime | None, datetime | None, str]:
    """A newest row's ``mql_at``, ``due_at`` (as if it began the run: the upsert keeps an earlier
    one) and its history point."""
    at = row[_AT]
    point = history_point(at, float(row[_P]))
    if not row[_MQL]:
        return None, None, point
    hours = RESPOND_HOURS.get(row[_RESPOND] or "24h", 24)
    return at, at + timedelta(hours=hours), point


@functools.lru_cache(maxsize=256)
def _sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite DateTime format (remembered: a batch's rows share one scoring time)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def write_scores(store: Store, rows: Sequence[Mapping[str, Any]]) -> None:
    """Log rows (mappings of ``SCORE_COLUMNS``) in one transaction: see ``write_score_tuples``."""
    write_score_tuples(store, list(map(score_tuple, rows)))


def write_score_tuples(store: Store, rows: Sequence[tuple[Any, ...]]) -> None:
    """Log rows (``score_tuple``: values in ``SCORE_COLUMNS`` order) in one transaction: every row
    into ``scores``, each lead's newest into ``latest_scores``. See ``write_score_chunks``."""
    if rows:
        write_score_chunks(store, [rows])


def write_score_chunks(store: Store, chunks: Iterable[Sequence[tuple[Any, ...]]]) -> int:
    """Log chunks of rows in one transaction (all or none: a batch run's log commits whole);
    returns the rows written.

    Written on a plain driver connection with ``executemany`` (the service writes its log in a
    process of its own, ``store.writer``). The driver's parameters are made a column at a time:
    per value, Python took a fifth of the write's CPU."""
    sqlite = store.dialect == "sqlite"
    insert, upsert = _statements(store.dialect)
    written = 0
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")  # writers queue on the busy timeout, none fails
        try:
            for rows in chunks:
                if not rows:
                    continue
                score_params, latest_params = _parameters(rows, sqlite)
                cursor.executemany(insert, score_params)
                cursor.executemany(upsert, latest_params)
                written += len(rows)
            if sqlite:
                cursor.execute("COMMIT")
            else:
                raw.commit()
        except BaseException:
            if sqlite:
                with contextlib.suppress(Exception):
                    cursor.execute("ROLLBACK")
            else:
                raw.rollback()
            raise
        finally:
            cursor.close()
    finally:
        raw.close()  # back to the pool
    return written


def _parameters(
    rows: Sequence[tuple[Any, ...]], sqlite: bool
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The driver's parameters for the rows (``scores``) and each lead's newest (``latest_scores``)."""
    newest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        key = row[_LEAD]
        if key and (key not in newest or row[_AT] >= newest[key][_AT]):
            newest[key] = row
    columns = list(zip(*(_full(r) for r in rows), strict=True))[: len(SCORE_COLUMNS)]
    for i in _JSON_AT:  # JSON text as log_rows makes it, or a value to encode
        if not all(v is None or type(v) is str for v in columns[i]):
            columns[i] = tuple(
                v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in columns[i]
            )
    # Times stored exactly as SQLAlchemy stores them in SQLite (so both read them back); booleans
    # are 0/1 already.
    stamp = _sqlite_time if sqlite else _as_is
    if sqlite:
        columns[_AT] = tuple(map(_sqlite_time, columns[_AT]))
    latest_params = [_latest_row(r, stamp) for r in newest.values()]
    return list(zip(*columns, strict=True)), latest_params


def _as_is(value: datetime) -> Any:
    return value


def _latest_row(row: tuple[Any, ...], stamp: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """A lead's newest row as the upsert takes it: ``LATEST_COLUMNS`` then ``CLOCK_COLUMNS``."""
    values = _json_text(_latest_values(_full(row)))
    mql_at, due_at, point = _clock(row)
    return (
        values[0],
        stamp(values[1]),
        *values[2:],
        None if mql_at is None else stamp(mql_at),
        None if due_at is None else stamp(due_at),
        point,
    )


def _full(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row with every ``ROW_FIELDS`` value (a row of the scores' columns only: the rest null)."""
    return row if len(row) == len(ROW_FIELDS) else (*row, *([None] * (len(ROW_FIELDS) - len(row))))


_LATEST_JSON = tuple(i for i, c in enumerate(LATEST_COLUMNS) if c in _JSON)


def _json_text(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A latest row's values with its JSON columns as text (as ``log_rows`` makes them, or encoded)."""
    if all(values[i] is None or type(values[i]) is str for i in _LATEST_JSON):
        return values
    out = list(values)
    for i in _LATEST_JSON:
        if not (out[i] is None or isinstance(out[i], str)):
            out[i] = orjson.dumps(out[i]).decode()
    return tuple(out)


def write_isolating(store: Store, rows: Sequence[tuple[Any, ...]]) -> tuple[int, str | None]:
    """``write_score_tuples``, but a row the database refuses (a value too long for its column ...)
    never takes its batch with it: the batch is halved until the refused rows stand alone, and only
    they are left out. Returns how many were refused and the database's first reason. A database
    that is down still raises."""
    try:
        write_score_tuples(store, rows)
    except Exception as exc:
        if not _refused_data(store, exc):
            raise
        if len(rows) == 1:
            return 1, error_line(exc)
        half = len(rows) // 2
        refused_a, why_a = write_isolating(store, rows[:half])
        refused_b, why_b = write_isolating(store, rows[half:])
        return refused_a + refused_b, why_a or why_b
    return 0, None


def _refused_data(store: Store, exc: BaseException) -> bool:
    """Whether the database refused the rows themselves (not a connection or lock problem)."""
    dbapi = store.engine.dialect.loaded_dbapi
    return isinstance(exc, dbapi.DataError | dbapi.IntegrityError)


def latest(store: Store, lead_ids: Iterable[str]) -> dict[str, Previous]:
    """Each lead's last logged answer (leads never logged are absent): the service's lookup, on a
    connection of its own for this call."""
    reader = LatestReader(store.url)
    try:
        return reader.get(list(lead_ids))
    finally:
        reader.close()


def served_scores(store: Store, since: datetime, until: datetime | None = None) -> pd.DataFrame:
    """The answers logged from ``since`` (up to ``until``), oldest first, with their inputs."""
    query = select(scores).where(scores.c.scored_at >= since).order_by(scores.c.scored_at, scores.c.id)
    if until is not None:
        query = query.where(scores.c.scored_at < until)
    with store.read() as conn:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in scores.columns])


def purge(store: Store, *, before: datetime | None = None, lead: str | None = None) -> dict[str, int]:
    """Delete logged answers older than ``before`` (retention) or every row of one lead (a deletion
    request: its log, its latest answer and its sales decisions)."""
    counts = {"scores": 0, "latest_scores": 0, "decisions": 0}
    with store.write() as conn:
        if before is not None:
            counts["scores"] += conn.execute(delete(scores).where(scores.c.scored_at < before)).rowcount
            counts["latest_scores"] += conn.execute(
                delete(latest_scores).where(latest_scores.c.scored_at < before)
            ).rowcount
        if lead is not None:
            key = lead_key(lead)
            counts["scores"] += conn.execute(delete(scores).where(scores.c.lead_id == key)).rowcount
            counts["latest_scores"] += conn.execute(
                delete(latest_scores).where(latest_scores.c.lead_id == key)
            ).rowcount
            counts["decisions"] += conn.execute(delete(decisions).where(decisions.c.lead_id == key)).rowcount
    return counts


def first_mql_answers(store: Store) -> pd.DataFrame:
    """Each lead's first logged answer that made it an MQL: when sales' clock started (``mql_at``)
    and the fields it was sent with (``inputs``: a demo or pricing request is the fast lane)."""
    query = (
        select(scores.c.lead_id, scores.c.scored_at, scores.c.inputs)
        .where(scores.c.mql.is_(True))
        .order_by(scores.c.lead_id, scores.c.scored_at, scores.c.id)
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame.from_records(rows, columns=["lead_id", "mql_at", "inputs"])
    return frame.drop_duplicates("lead_id", keep="first").reset_index(drop=True)


class LatestReader:
    """Each lead's latest answer by its key on one plain driver connection (autocommit, no ORM or
    pool on the way): the service's request path reads ``previous`` in tens of microseconds.

    One connection shared under a lock: a lookup is one indexed query, far shorter than the
    scoring around it. A broken connection is dropped and opened again on the next lookup."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._database = parsed.database or ""
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._mark = "?" if self.dialect == "sqlite" else "%s"
        self._lock = threading.Lock()
        self._conn: Any = None

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            conn = sqlite3.connect(self._database, check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        import psycopg

        return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)

    def get(self, lead_ids: Sequence[str]) -> dict[str, Previous]:
        wanted = sorted({i for i in lead_ids if i})
        out: dict[str, Previous] = {}
        with self._lock:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                sql = (
                    "SELECT lead_id, p_sql, grade, mql, scored_at, inputs FROM latest_scores WHERE lead_id IN ("
                    + ", ".join([self._mark] * len(chunk))
                    + ")"
                )
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    rows = self._conn.execute(sql, chunk).fetchall()
                except Exception:
                    self.close()
                    raise
                for lead, p, grade, mql, at, inputs in rows:
                    when = datetime.fromisoformat(at) if isinstance(at, str) else at
                    out[str(lead)] = Previous(float(p), str(grade), bool(mql), when, inputs)
        return out

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def store_counts(store: Store) -> dict[str, Any]:
    """What the store holds: rows per table and the span of the score log."""
    with store.read() as conn:
        counts = {
            "decisions": int(conn.execute(select(func.count()).select_from(decisions)).scalar_one()),
            "scores": int(conn.execute(select(func.count()).select_from(scores)).scalar_one()),
            "leads_scored": int(conn.execute(select(func.count()).select_from(latest_scores)).scalar_one()),
        }
        first, last = conn.execute(select(func.min(scores.c.scored_at), func.max(scores.c.scored_at))).one()
    return {**counts, "first_score": _iso(first), "last_score": _iso(last)}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
