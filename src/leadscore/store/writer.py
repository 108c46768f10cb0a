"""The score log's writer: answers are queued in memory and written to the store in batches by a
process of their own, so logging never waits for the database on the request path and the
database's work never competes with it for this process's interpreter.

The serving process keeps the queue, each queued lead's newest answer (``previous`` answers from it
until the row is written) and one thread that hands queued rows to the writer process and waits for
it. Rows come as the batch scorers pack them (pickled once, opaque here) or as plain rows. The
writer process runs at a lower CPU priority: on a busy machine the scoring comes first and the log
catches up in the gaps.

The queue is bounded: when it is full (the database is slow or down) new rows are dropped and
counted, and the service keeps scoring. A writer process that dies is replaced and its batch sent
once more; a batch that fails again, or a writer silent for ``WRITE_TIMEOUT``, is dropped and counted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from leadscore.store.db import error_line, open_store
from leadscore.store.scores import (
    ROW_FIELDS,
    LatestReader,
    Previous,
    ScoreRow,
    score_tuple,
    write_isolating,
)

log = logging.getLogger(__name__)

FLUSH_ROWS = 2_000  # rows per write transaction
FLUSH_SECONDS = 0.05  # the longest a row waits: small, frequent writes keep the request path's tail short
RETRY_SECONDS = 5.0  # after a failed write or open, the database is tried again this much later
WARN_EVERY_SECONDS = 60.0
WRITE_TIMEOUT = 120.0  # a writer process silent this long is stuck: it is replaced, its rows dropped
WRITER_NICE = 5  # the writer process's CPU priority below the scoring (0: the same)


class LoggedAnswer(NamedTuple):
    """A logged row's lead and answer: what ``previous`` needs of a row still queued."""

    lead_id: str
    p_sql: float
    grade: str
    mql: bool
    scored_at: datetime
    inputs: Any = None  # the model's fields (JSON text), for the next answer's ``changes``

    @property
    def previous(self) -> Previous:
        return Previous(self.p_sql, self.grade, self.mql, self.scored_at, self.inputs)


class LogView(NamedTuple):
    """What a batch scorer process needs to find previous answers itself."""

    queued: bytes  # the answers of rows still queued here (``Previous``'s values by lead key), pickled
    url: str | None  # the store's URL while it is up (None: look in the queue only)


@dataclass(frozen=True)
class PackedRows:
    """Log rows as a batch scorer hands them over: pickled once where they were made (the serving
    process only forwards the bytes to the writer process) and each row's answer, for ``previous``."""

    blob: bytes
    answers: list[LoggedAnswer]

    @classmethod
    def pack(cls, rows: Sequence[Mapping[str, Any]]) -> PackedRows:
        """Rows (mappings) packed: see ``from_rows``."""
        return cls.from_rows(list(map(score_tuple, rows)))

    @classmethod
    def from_rows(cls, rows: Sequence[ScoreRow]) -> PackedRows:
        """Rows (``scoring.answer.log_rows``) packed: smaller to pickle and quicker to unpickle than dicts, and
        what the driver takes."""
        answers = [LoggedAnswer(r.lead_id, r.p_sql, r.grade, r.mql, r.scored_at, r.inputs) for r in rows]
        # On the wire as plain tuples: a NamedTuple pickles through Python calls per row (1,000
        # rows: 0.76 ms to dump, 0.30 ms to load, against 0.08 and 0.09 ms as tuples).
        return cls(pickle.dumps(list(map(tuple, rows)), protocol=pickle.HIGHEST_PROTOCOL), answers)

    def tuples(self) -> list[tuple[Any, ...]]:
        """The rows as the driver takes them: values in ``ROW_FIELDS`` order."""
        values: list[tuple[Any, ...]] = pickle.loads(self.blob)
        return values

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(ROW_FIELDS, values, strict=True)) for values in self.tuples()]

    def __len__(self) -> int:
        return len(self.answers)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its answers as plain tuples (a scorer hands every part to the serving process)."""
        return (_unpack, (self.blob, list(map(tuple, self.answers))))


_as_answer = functools.partial(tuple.__new__, LoggedAnswer)  # a plain tuple named, without a Python call


def _unpack(blob: bytes, answers: list[tuple[Any, ...]]) -> PackedRows:
    return PackedRows(blob, list(map(_as_answer, answers)))


class OpenStore(NamedTuple):
    """Ask the writer process to open the store (answered with ``StoreUp`` or ``StoreDown``)."""


class WriteRows(NamedTuple):
    """Rows for the writer process to write: packed parts (``PackedRows.blob``), in order."""

    blobs: list[bytes]


class StoreUp(NamedTuple):
    url: str  # the store's URL as opened (its password hidden)
    refused: int = 0  # rows of the batch the database refused (the others were written)
    why: str | None = None  # the database's reason for the first refused row


class StoreDown(NamedTuple):
    error: str  # one line: why the store cannot be opened or written


ToWriter = OpenStore | WriteRows
FromWriter = StoreUp | StoreDown


def _write_rows(conn: Connection, url: str | None, nice: int) -> None:
    """The writer process: open the store when asked, write what it is sent, say how it went."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the server decides
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    store = None
    while True:
        try:
            message: ToWriter = conn.recv()
        except (EOFError, OSError):  # the serving process closed the pipe (or died)
            return
        try:
            if isinstance(message, OpenStore):
                store = open_store(url)
                reply: FromWriter = StoreUp(store.url)
            else:
                if store is None:
                    raise RuntimeError("the writer process was asked to write before opening the store")
                rows = [row for blob in message.blobs for row in pickle.loads(blob)]
                refused, why = write_isolating(store, rows)
                reply = StoreUp(store.url, refused, why)
        except Exception as exc:
            reply = StoreDown(error_line(exc))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class _WriterGone(Exception):
    """The writer process died or stopped answering."""


class ScoreWriter:
    """A bounded queue of log rows, the thread that hands them over and the process that writes them.

    ``context``: how the writer process is started (default: spawned; the service passes its batch
    scorers' fork server, which has the store's code imported already)."""

    def __init__(
        self,
        url: str | None = None,
        capacity: int = 50_000,
        *,
        context: Any = None,
        nice: int = WRITER_NICE,
    ) -> None:
        self.url = url
        self.capacity = capacity
        self.nice = nice
        self.written = 0
        self.dropped = 0
        self.restarted = 0  # writer processes replaced after dying or hanging
        self._context: Any = context or multiprocessing.get_context("spawn")
        self._parts: deque[PackedRows] = deque()
        self._queued = 0  # rows in self._parts
        # Leads with rows queued or being written: their newest answer, and how many rows are left.
        self._pending: dict[str, tuple[LoggedAnswer, int]] = {}
        self._hurry = False  # flush() asks for the queue to be written now
        self._cond = threading.Condition()
        self._store_url: str | None = None  # the store's URL once the writer process has opened it
        self._reader: LatestReader | None = None  # the request path's lookups of previous answers
        self._process: Any = None
        self._conn: Connection | None = None
        self._down_until = 0.0
        self._down_reason = "the database cannot be opened"
        self._warned_at = 0.0
        self._closing = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.tried = threading.Event()  # set once the first connection attempt has ended either way

    @property
    def connected(self) -> bool:
        """Whether the store is open and was not found down lately."""
        return self._store_url is not None and time.monotonic() >= self._down_until

    # -- the request path ------------------------------------------------------------------
    def submit(self, rows: Sequence[Mapping[str, Any]] | PackedRows) -> bool:
        """Queue rows to be written (plain rows, or rows a scorer packed); False (rows dropped and
        counted) when the queue is full."""
        part = rows if isinstance(rows, PackedRows) else PackedRows.pack(rows)
        if not len(part):
            return True
        with self._cond:
            self._ensure_thread()
            if self._store_url is None:  # not connected yet: try again in the background
                self._cond.notify()
            if self._queued + len(part) > self.capacity:
                self.dropped += len(part)
                self._warn(f"score log queue full ({self.capacity:,} rows): dropped {len(part):,} rows")
                return False
            self._parts.append(part)
            self._queued += len(part)
            pending = self._pending
            for answer in part.answers:
                key = answer.lead_id
                if key:
                    left = pending[key][1] if key in pending else 0
                    pending[key] = (answer, left + 1)
            if self._queued >= FLUSH_ROWS:
                self._cond.notify()
        return True

    def previous(self, lead_ids: Iterable[str]) -> dict[str, Previous]:
        """Each lead's last logged answer: queued rows first, then the store (empty when it is down)."""
        ids = [i for i in lead_ids if i]
        with self._cond:
            found = {i: self._pending[i][0].previous for i in ids if i in self._pending}
        rest = [i for i in ids if i not in found]
        reader = self._reader  # set once the writer process has opened the store
        if rest and reader is not None and time.monotonic() >= self._down_until:
            try:
                found.update(reader.get(rest))
            except Exception as exc:  # the database is down: answer without previous, keep scoring
                self._mark_down(exc)
        return found

    def view(self) -> LogView:
        """What a batch scorer process needs to find previous answers itself: the answers of rows
        still queued here (pickled once for every scorer of a batch, on its critical path), and the store's URL while it is up (None: look in the queue only)."""
        with self._cond:
            # Previous's values, plain on the wire (a slice of a NamedTuple is a tuple)
            pending = {key: answer[1:] for key, (answer, _) in self._pending.items()}
        url = self._store_url if time.monotonic() >= self._down_until else None
        return LogView(pickle.dumps(pending, protocol=pickle.HIGHEST_PROTOCOL), url)

    # -- the thread that hands rows to the writer process -----------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or self._pid != os.getpid():  # a forked worker starts its own
            if self._pid != os.getpid():
                self._process, self._conn = None, None  # the parent's writer process is not ours
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="leadscore-score-log", daemon=True)
            self._thread.start()

    def start(self) -> None:
        """Start the writer now (it connects to the store at once, off the request path)."""
        with self._cond:
            self._ensure_thread()

    def _run(self) -> None:
        self._open()
        while True:
            with self._cond:
                if self._queued < FLUSH_ROWS and not self._closing and not self._hurry:
                    self._cond.wait(FLUSH_SECONDS)  # gather rows: one transaction per batch, not per answer
                if not self._parts:
                    self._hurry = False
                    if self._closing:
                        return
                    continue
                batch = [self._parts.popleft()]
                size = len(batch[0])
                while self._parts and size + len(self._parts[0]) <= FLUSH_ROWS:
                    batch.append(self._parts.popleft())
                    size += len(batch[-1])
                self._queued -= size
                self._busy = True
            self._write(batch, size)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _write(self, batch: list[PackedRows], size: int) -> None:
        ok, refused, why = False, 0, None
        down = "the database cannot be opened"
        for attempt in (1, 2):  # a writer process found dead is replaced and the rows sent once more
            if not self._open(warn=False):
                down = self._down_reason
                break
            try:
                reply = self._ask(WriteRows([part.blob for part in batch]))
            except _WriterGone as exc:
                if attempt == 2:
                    down = self._mark_down(exc, warn=False)
                continue
            ok = isinstance(reply, StoreUp)
            if isinstance(reply, StoreUp):
                refused, why = reply.refused, reply.why
            else:
                down = self._mark_down(reply.error, warn=False)
            break
        with self._cond:
            if ok:
                self.written += size - refused
                if refused:  # the database refused these rows themselves: the rest was written
                    self.dropped += refused
                    self._warn(f"score log: {refused:,} rows refused by the database and dropped ({why})")
            else:  # counted first: the warning says what was dropped, this batch included
                self.dropped += size
                self._warn(f"score log: {size:,} rows dropped: database unavailable ({down})")
            pending = self._pending
            for part in batch:  # written (or given up): the store answers for them from now on
                for key, *_ in part.answers:
                    if key in pending:
                        answer, left = pending[key]
                        if left > 1:
                            pending[key] = (answer, left - 1)
                        else:
                            del pending[key]

    def _open(self, warn: bool = True) -> bool:
        """Whether the writer process has the store open (asking it to open it when it has not)."""
        if self._store_url is not None and self._conn is not None:
            return True
        if time.monotonic() < self._down_until:
            return False
        try:
            reply = self._ask(OpenStore())
            if isinstance(reply, StoreDown):
                self._mark_down(reply.error, warn=warn)
                return False
            self._store_url = reply.url
            if self._reader is None:
                self._reader = LatestReader(reply.url)
            return True
        except _WriterGone as exc:
            self._mark_down(exc, warn=warn)
            return False
        finally:
            self.tried.set()

    def _ask(self, message: ToWriter) -> FromWriter:
        """Send the writer process a message and wait for its answer (starting it first if need be)."""
        if self._conn is None:
            try:
                ours, theirs = self._context.Pipe(duplex=True)
                self._process = self._context.Process(
                    target=_write_rows,
                    args=(theirs, self.url, self.nice),
                    name="leadscore-score-log",
                    daemon=True,
                )
                self._process.start()
            except Exception as exc:  # no process could be started (out of memory, a bad context)
                self._process = None
                raise _WriterGone(f"the writer process cannot be started: {exc}") from None
            theirs.close()
            self._conn = ours
        conn = self._conn
        try:
            conn.send(message)
            if not conn.poll(WRITE_TIMEOUT):
                raise _WriterGone(f"the writer process did not answer within {WRITE_TIMEOUT:g} s")
            reply: FromWriter = conn.recv()
            return reply
        except Exception as exc:  # died (EOF, broken pipe), hung, or sent something unreadable
            self._replace()
            raise _WriterGone(str(exc) or f"the writer process died ({type(exc).__name__})") from None

    def _replace(self) -> None:
        """Stop a dead or stuck writer process; the next message starts another."""
        self._stop_process(1.0)
        self._process, self._conn, self._store_url = None, None, None
        self.restarted += 1

    def _stop_process(self, timeout: float) -> None:
        """Close the writer process's pipe (it exits on the end of it), wait, kill it if it does not."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5.0)

    def _mark_down(self, exc: BaseException | str, *, warn: bool = True) -> str:
        """Take the store as down for a while; the reason, in one line (warned unless the caller
        warns itself, after counting what it dropped)."""
        self._down_until = time.monotonic() + RETRY_SECONDS
        reason = exc if isinstance(exc, str) else error_line(exc)
        self._down_reason = reason
        if warn:
            self._warn(f"score log: database unavailable ({reason})")
        return reason

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("%s (%s dropped so far)", message, f"{self.dropped:,}")

    # -- shutdown and tests ----------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued row is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            while self._parts or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, FLUSH_SECONDS))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, stop the thread and the writer process."""
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        self._stop_process(timeout)
        if self._reader is not None:
            self._reader.close()
