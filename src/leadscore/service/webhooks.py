"""Delivering webhook events (``LEADSCORE_WEBHOOKS``): at least once, never on the request path.

Scoring hands its events to ``submit`` (a bounded in-memory queue; a full queue drops and counts).
One thread per service process writes them to the store's outbox first, then sends every due
delivery from there: POST with the signature, the timestamp and the event id as
``Idempotency-Key``; a 2xx takes it; anything else (a refusal, a timeout, a receiver down) is tried
again after a back-off that doubles up to ``LEADSCORE_WEBHOOK_MAX_BACKOFF`` seconds, until the event
is older than ``LEADSCORE_WEBHOOK_GIVE_UP_HOURS`` (then it is failed and shown by
``GET /v1/admin/webhooks``). What is in the store survives a restart: the next start sends it. The
same thread raises ``lead.sla_overdue`` for MQL events nobody decided on within their respond-within.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx

from leadscore.errors import UserError
from leadscore.service.alerts import RESPOND, body_of, overdue_event, signed
from leadscore.store.db import Store, error_line, open_store
from leadscore.store.scores import now_utc
from leadscore.store.webhooks import Due, Event, claim_due, mark, next_due, undecided_mqls, write_events

log = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0  # seconds a receiver has to answer
TICK = 0.25  # the thread's longest sleep: new events wait at most this long before they are written
QUEUE_SIZE = 100_000
OVERDUE_EVERY = 30.0  # seconds between looks for MQLs past their respond-within


@dataclass(frozen=True)
class WebhookConfig:
    urls: tuple[str, ...]
    secret: str
    fmt: str = "json"  # or "chat"
    link: str | None = None  # the service's public URL, for chat messages' links
    max_backoff: float = 300.0
    give_up_hours: float = 48.0

    @classmethod
    def from_settings(
        cls, urls: str, secret: str, fmt: str, link: str, max_backoff: float, give_up_hours: float
    ) -> WebhookConfig | None:
        """The configuration, or None without URLs; a wrong setting is one line naming it."""
        found = tuple(u.strip() for u in urls.split(",") if u.strip())
        if not found:
            return None
        for url in found:
            if not url.startswith(("http://", "https://")):
                raise UserError(f"LEADSCORE_WEBHOOKS: '{url}' is not an http(s) URL")
        if fmt not in ("json", "chat"):
            raise UserError(f"LEADSCORE_WEBHOOK_FORMAT: '{fmt}' is not 'json' or 'chat'")
        if fmt == "json" and len(secret) < 16:
            raise UserError("LEADSCORE_WEBHOOK_SECRET: at least 16 characters, to sign the events")
        return cls(found, secret, fmt, link or None, max(0.1, max_backoff), give_up_hours)


class Deliverer:
    """The outbox's writer and sender for one service process."""

    def __init__(self, database_url: str, config: WebhookConfig) -> None:
        self.url = database_url
        self.config = config
        self.queue: queue.Queue[list[Event]] = queue.Queue(maxsize=QUEUE_SIZE)
        self.dropped = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadscore-webhooks", daemon=True)
        self._last_overdue = 0.0

    def start(self) -> None:
        self._thread.start()

    def submit(self, events: Sequence[Event]) -> None:
        """Hand over events (never waits: a full queue drops them and counts)."""
        if not events:
            return
        try:
            self.queue.put_nowait(list(events))
        except queue.Full:
            self.dropped += len(events)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop (what is not yet sent stays in the store for the next start)."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        store: Store | None = None
        client = httpx.Client(timeout=SEND_TIMEOUT)
        while True:
            stopping = self._stop.is_set()
            try:
                store = store or open_store(self.url)
                self._write_queued(store)
                if stopping:
                    break
                self._raise_overdue(store)
                self._send_due(store, client)
            except Exception as exc:  # the store is down: keep the queue, try again shortly
                log.warning("webhooks: %s", error_line(exc))
                if stopping:
                    break
            self._stop.wait(self._sleep(store))
        client.close()

    def _write_queued(self, store: Store) -> None:
        events: list[Event] = []
        while True:
            try:
                events.extend(self.queue.get_nowait())
            except queue.Empty:
                break
        if events:
            write_events(store, events, self.config.urls, now_utc())

    def _raise_overdue(self, store: Store) -> None:
        if time.monotonic() - self._last_overdue < OVERDUE_EVERY:
            return
        self._last_overdue = time.monotonic()
        now = now_utc()
        late = undecided_mqls(store, {kind: now - wait for kind, wait in RESPOND.items()})
        write_events(store, [overdue_event(m, now) for m in late], self.config.urls, now)

    def _send_due(self, store: Store, client: httpx.Client) -> None:
        lease = timedelta(seconds=SEND_TIMEOUT * 3)
        for due in claim_due(store, now_utc(), lease):
            self._send(store, client, due)

    def _send(self, store: Store, client: httpx.Client, due: Due) -> None:
        config = self.config
        body = body_of(due.kind, due.payload, config.fmt, config.link)
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": due.event_id,
            "X-Leadscore-Event": due.kind,
            "X-Leadscore-Timestamp": str(stamp),
        }
        if config.secret:
            headers["X-Leadscore-Signature"] = signed(body, config.secret, stamp)
        error = None
        try:
            answer = client.post(due.url, content=body, headers=headers)
            if answer.is_success:
                self.sent += 1
                mark(store, due, delivered=True, now=now_utc(), retry_at=None, error=None)
                return
            error = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        now = now_utc()
        wait = min(config.max_backoff, 2.0**due.attempts)
        too_old = now - due.created_at > timedelta(hours=config.give_up_hours)
        retry = None if too_old else now + timedelta(seconds=wait)
        mark(store, due, delivered=False, now=now, retry_at=retry, error=error)

    def _sleep(self, store: Store | None) -> float:
        """Until the next delivery is due, at most ``TICK`` (new events are written that often)."""
        if store is None:
            return 1.0
        try:
            due = next_due(store)
        except Exception:
            return 1.0
        if due is None:
            return TICK
        return max(0.0, min(TICK, (due - now_utc()).total_seconds()))
