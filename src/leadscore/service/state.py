"""The running service's state: the loaded model (swapped as one on reload), keys, limits and metrics."""

from __future__ import annotations

import asyncio
import gc
import threading
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool

from leadscore.errors import UserError
from leadscore.scoring.bundle import ModelBundle
from leadscore.service.account_log import AccountLog
from leadscore.service.auth import KeyRing
from leadscore.service.batches import BatchScorers
from leadscore.service.coalesce import OneLeads
from leadscore.service.leads import LeadChecker
from leadscore.service.loaded import Loaded
from leadscore.service.telemetry import Metrics
from leadscore.service.webhooks import Deliverer
from leadscore.service.workers import ReloadBoard
from leadscore.store.writer import ScoreWriter
from leadscore.tracking.loading import load_bundle


@dataclass
class ServiceState:
    keys: KeyRing
    insecure: bool
    max_batch: int
    max_body_bytes: int
    model_source: str
    workers: int = 1
    docs: bool = True
    max_batches: int = 2  # batch scorings at once; more are answered 503 with Retry-After
    metrics: Metrics = field(default_factory=Metrics)
    loaded: Loaded | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    batches_in_flight: int = 0
    board: ReloadBoard | None = None  # several workers: the shared reload folder
    generation: int = 0  # the reload generation this worker serves
    score_log: ScoreWriter | None = None  # every answer logged to the store (None: logging off)
    trend_threshold: float = 0.05  # a change in P(SQL) of at least this is a trend
    scorers: BatchScorers | None = None  # the batch scorer processes (one per batch slot)
    scorers_warming: bool = False  # the scorers are being started with the model (not ready yet)
    accounts: ModelBundle | None = None  # the account model (``serve --accounts-model``), if any
    database_url: str = ""  # the store: decisions are written there
    webhooks: Deliverer | None = None  # signed alerts to LEADSCORE_WEBHOOKS, written to the store first
    account_log: AccountLog | None = None  # account answers into the store (score log on, account model)
    one_leads: OneLeads = field(default_factory=OneLeads)  # one-lead requests answered together

    def __post_init__(self) -> None:
        if self.one_leads.observe is None:  # each turn's group size into /metrics
            self.one_leads.observe = self.metrics.groups.observe

    def try_start_batch(self) -> bool:
        """Take a batch slot if one is free (the event loop is single-threaded: no lock needed)."""
        if self.batches_in_flight >= self.max_batches:
            return False
        self.batches_in_flight += 1
        return True

    def end_batch(self) -> None:
        self.batches_in_flight -= 1


def load_accounts_model(source: str) -> ModelBundle:
    """An account model for ``/v1/accounts/score`` (one line when the source is a lead model)."""
    bundle = load_bundle(source)
    if bundle.spec.account_of is None:
        raise UserError(f"--accounts-model: {source} is a lead model, not an account model")
    bundle.num_threads = 1
    bundle.prepare_reasons()
    return bundle


def load_model(source: str) -> Loaded:
    """Load a bundle for serving (single-threaded scoring per request; one worker per core)."""
    bundle = load_bundle(source)
    bundle.num_threads = 1
    if bundle.time_head is not None:
        bundle.time_head.num_threads = 1
    bundle.prepare_reasons()
    loaded = Loaded(bundle=bundle, checker=LeadChecker(bundle), source=source)
    # The model lives until the next reload: keep its objects out of the garbage collector's full
    # passes, which otherwise walk them all in the middle of a request. Unfreezing first lets a
    # model replaced by an earlier reload be collected.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return loaded


async def reload_state(state: ServiceState, generation: int | None = None) -> tuple[str | None, str]:
    """Load off the event loop, then swap in one assignment (readers see the old or the new model).

    With several workers the outcome is reported on the shared board, failure included.
    """
    async with state.reload_lock:
        before = state.loaded.model_version if state.loaded else None
        target = state.generation if generation is None else generation
        try:
            fresh = await run_in_threadpool(load_model, state.model_source)
        except UserError as exc:
            if state.board is not None:
                state.board.report(model_version=before, generation=target, error=str(exc))
            raise
        state.loaded = fresh
        state.generation = target
        state.metrics.reloads.inc()
        if state.board is not None:
            state.board.report(model_version=fresh.model_version, generation=target)
    return before, fresh.model_version
