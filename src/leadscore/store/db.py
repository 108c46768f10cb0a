"""Opening the store: one engine per database URL and process, migrated to the newest schema once.

SQLite (the default) runs in WAL mode with a busy timeout, so readers never wait for the writer, and
write transactions start with ``BEGIN IMMEDIATE``, so two writers queue instead of failing on a lock
upgrade. PostgreSQL serialises migrations with an advisory lock; decisions are written with
``INSERT ... ON CONFLICT DO NOTHING`` on both, so concurrent imports lose nothing and add nothing twice.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from leadscore.config import get_settings
from leadscore.errors import UserError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
WAL_SECONDS = 5.0  # how long a new connection tries to put a store in WAL mode (a file system
# without WAL support keeps its mode after that)
_MIGRATION_LOCK = 7_351_902_611  # PostgreSQL advisory lock key: one migrating process at a time
_OPEN: dict[tuple[str, int], Store] = {}
_OPEN_LOCK = threading.Lock()


def database_url(given: str | Path | None = None) -> str:
    """The database URL from what a user gives: a URL, or a path to a SQLite file (default: the
    ``LEADSCORE_DATABASE_URL`` setting). The old Parquet feedback store is refused, saying how to move it."""
    value = str(given) if given is not None else get_settings().database_url
    if value.endswith(".parquet"):
        raise UserError(
            f"{value}: the Parquet feedback store is replaced by the database; import it once with "
            f"leadscore store migrate-feedback {value}"
        )
    if "://" not in value:
        return f"sqlite:///{value}"
    try:
        make_url(value)
    except ArgumentError as exc:
        raise UserError(f"database URL '{value}' cannot be read: {exc}") from exc
    return value


class Store:
    """One database: its engine and how to read and write in it."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
            _sqlite_pragmas(self.engine)
        else:
            self.engine = create_engine(
                url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 5}
            )

    @property
    def shown(self) -> str:
        """The URL without its password, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite: writers queue, none fails)."""
        with self.engine.connect() as conn:
            conn.execution_options(leadscore_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def _wal(cursor: Any) -> None:
    """The file in WAL mode before anything is read or written. The mode stays in the file, so only
    the first connections to a new store switch it; when several processes create a store at once,
    a switch can fail while another holds the file (SQLite then answers 'locked' at once, or leaves
    the old mode, without waiting): the connection tries again. In the old rollback mode a reader
    that wants to write can deadlock with another writer and fail at once."""
    deadline = time.monotonic() + WAL_SECONDS
    while True:
        try:
            mode = str(cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            mode = "locked"
        if mode in ("wal", "memory") or time.monotonic() > deadline:  # ":memory:" has no WAL
            return
        time.sleep(0.01)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy, not the driver, begins transactions
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("leadscore_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def store_exists(given: str | Path | None = None) -> bool:
    """Whether there may be a store to read: a SQLite file that is not there holds nothing (a reader
    need not create it); a server database is assumed to be there."""
    parsed = make_url(database_url(given))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return True
    return Path(parsed.database).is_file()


def open_store(given: str | Path | None = None) -> Store:
    """The store at ``given`` (a URL or a SQLite path; default: the setting), migrated to the newest
    schema. One engine per URL and process (a forked worker opens its own)."""
    url = database_url(given)
    key = (url, os.getpid())
    with _OPEN_LOCK:
        store = _OPEN.get(key)
        if store is None:
            store = Store(url)
            try:
                migrate(store)
            except OperationalError as exc:
                store.dispose()
                raise UserError(f"database {store.shown}: cannot be opened ({error_line(exc)})") from exc
            _OPEN[key] = store
    return store


def migrate(store: Store) -> str:
    """Bring the schema to the newest revision (a no-op when it is there); returns the revision."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with store.engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return str(head)
    with store.write() as conn:  # one migrating process at a time; the others find it done
        if store.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        if MigrationContext.configure(conn).get_current_revision() != head:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    return str(head)


def error_line(exc: BaseException) -> str:
    """The first line of a database error (the driver's own, under SQLAlchemy's wrapper)."""
    text = str(getattr(exc, "orig", exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
