"""The service's account answers into the store, off the request path: a bounded queue and one thread
writing what it holds every ``FLUSH_SECONDS`` (the account queue page reads them). A full queue (the
database slow or down) drops new answers and counts them; the service keeps answering."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any

from leadscore.store.account_answers import account_row, write_account_answers
from leadscore.store.db import error_line, open_store
from leadscore.store.scores import now_utc

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.2
MAX_ROWS = 2_000  # answers per write


class AccountLog:
    """Account answers queued here and written by a thread of their own."""

    def __init__(self, url: str, limit: int = 10_000) -> None:
        self.url = url
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=limit)
        self._thread = threading.Thread(target=self._run, name="leadscore-account-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, answer: Mapping[str, Any]) -> None:
        """Queue one answer (``account_answer``'s keys); never waits."""
        try:
            self._queue.put_nowait(account_row(answer, "api", now_utc()))
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            rows: list[dict[str, Any]] = []
            try:
                first = self._queue.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                continue
            stopping = first is None
            if first is not None:
                rows.append(first)
            while len(rows) < MAX_ROWS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                rows.append(more)
            self._write(rows)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            self.written += write_account_answers(open_store(self.url), rows)
        except Exception as exc:  # the database is down: these answers are lost, the service goes on
            self.dropped += len(rows)
            log.warning("account answers not logged (%d): %s", len(rows), error_line(exc))
