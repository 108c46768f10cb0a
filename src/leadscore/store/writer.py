"""The score log's writer: answers are queued in memory and written by one background thread in
batches, so logging never waits for the database on the request path.

The queue is bounded: when it is full (the database is slow or down) new rows are dropped and
counted, and the service keeps scoring. Rows not yet written still answer ``previous``.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from leadscore.store.db import Store, error_line, open_store
from leadscore.store.scores import LatestReader, Previous, write_scores

log = logging.getLogger(__name__)

FLUSH_ROWS = 2_000  # rows per write transaction
FLUSH_SECONDS = 0.05  # the longest a row waits: small, frequent writes keep the request path's tail short
RETRY_SECONDS = 5.0  # after a failed write or open, the database is tried again this much later
WARN_EVERY_SECONDS = 60.0


class ScoreWriter:
    """A bounded queue of log rows and the thread that writes them to the store."""

    def __init__(self, url: str | None = None, capacity: int = 50_000) -> None:
        self.url = url
        self.capacity = capacity
        self.written = 0
        self.dropped = 0
        self._rows: deque[Mapping[str, Any]] = deque()
        # Leads with rows queued or being written: their newest answer, and how many rows are left.
        self._pending: dict[str, tuple[Previous, int]] = {}
        self._hurry = False  # flush() asks for the queue to be written now
        self._cond = threading.Condition()
        self._store: Store | None = None
        self._reader: LatestReader | None = None  # the request path's lookups of previous answers
        self._down_until = 0.0
        self._warned_at = 0.0
        self._closing = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.tried = threading.Event()  # set once the first connection attempt has ended either way

    @property
    def connected(self) -> bool:
        """Whether the store is open and was not found down lately."""
        return self._store is not None and time.monotonic() >= self._down_until

    # -- the request path ------------------------------------------------------------------
    def submit(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Queue rows to be written; False (rows dropped and counted) when the queue is full."""
        if not rows:
            return True
        with self._cond:
            self._ensure_thread()
            if self._store is None:  # not connected yet: try again in the background
                self._cond.notify()
            if len(self._rows) + len(rows) > self.capacity:
                self.dropped += len(rows)
                self._warn(f"score log queue full ({self.capacity:,} rows): dropped {len(rows):,} rows")
                return False
            self._rows.extend(rows)
            for row in rows:
                key = row["lead_id"]
                if key:
                    left = self._pending[key][1] if key in self._pending else 0
                    answer = Previous(row["p_sql"], row["grade"], row["mql"], row["scored_at"])
                    self._pending[key] = (answer, left + 1)
            if len(self._rows) >= FLUSH_ROWS:
                self._cond.notify()
        return True

    def previous(self, lead_ids: Iterable[str]) -> dict[str, Previous]:
        """Each lead's last logged answer: queued rows first, then the store (empty when it is down)."""
        ids = [i for i in lead_ids if i]
        with self._cond:
            found = {i: self._pending[i][0] for i in ids if i in self._pending}
        rest = [i for i in ids if i not in found]
        reader = self._reader  # set once the writer thread has opened the store
        if rest and reader is not None and time.monotonic() >= self._down_until:
            try:
                found.update(reader.get(rest))
            except Exception as exc:  # the database is down: answer without previous, keep scoring
                self._mark_down(exc)
        return found

    def view(self) -> tuple[bytes, str | None]:
        """What a batch scorer process needs to find previous answers itself: the answers of rows
        still queued here (pickled once, for every scorer of a batch: a thousand or two of them
        took milliseconds to pickle per scorer), and the store's URL while it is up (None: look in
        the queue only)."""
        with self._cond:
            pending = {key: answer for key, (answer, _) in self._pending.items()}
        store = self._store
        up = store is not None and time.monotonic() >= self._down_until
        return pickle.dumps(
            pending, protocol=pickle.HIGHEST_PROTOCOL
        ), store.url if up and store is not None else None

    # -- the writer thread -----------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or self._pid != os.getpid():  # a forked worker starts its own
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="leadscore-score-log", daemon=True)
            self._thread.start()

    def start(self) -> None:
        """Start the writer thread now (it connects to the store at once, off the request path)."""
        with self._cond:
            self._ensure_thread()

    def _run(self) -> None:
        self._open()
        while True:
            with self._cond:
                if len(self._rows) < FLUSH_ROWS and not self._closing and not self._hurry:
                    self._cond.wait(FLUSH_SECONDS)  # gather rows: one transaction per batch, not per answer
                if not self._rows:
                    self._hurry = False
                    if self._closing:
                        return
                    continue
                batch = [self._rows.popleft() for _ in range(min(FLUSH_ROWS, len(self._rows)))]
                self._busy = True
            self._write(batch)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _write(self, batch: list[Mapping[str, Any]]) -> None:
        store = self._open()
        ok = False
        if store is not None:
            try:
                write_scores(store, batch)
                ok = True
            except Exception as exc:
                self._mark_down(exc)
        with self._cond:
            if ok:
                self.written += len(batch)
            else:
                self.dropped += len(batch)
                self._warn(f"score log: {len(batch):,} rows dropped, the database cannot be written")
            for row in batch:  # written (or given up): the store answers for them from now on
                key = row["lead_id"]
                if key in self._pending:
                    answer, left = self._pending[key]
                    if left > 1:
                        self._pending[key] = (answer, left - 1)
                    else:
                        del self._pending[key]

    def _open(self) -> Store | None:
        if self._store is not None:
            return self._store
        if time.monotonic() < self._down_until:
            return None
        try:
            self._store = open_store(self.url)
            self._reader = LatestReader(self._store.url)
        except Exception as exc:
            self._mark_down(exc)
        finally:
            self.tried.set()
        return self._store

    def _mark_down(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY_SECONDS
        self._warn(f"score log: database unavailable ({error_line(exc)})")

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
            while self._rows or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, FLUSH_SECONDS))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        if self._reader is not None:
            self._reader.close()
