"""The running service's state: the loaded model (swapped as one on reload), keys, limits and metrics."""

from __future__ import annotations

import asyncio
import gc
import threading
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool

from leadscore.scoring.bundle import ModelBundle
from leadscore.service.auth import KeyRing
from leadscore.service.leads import LeadChecker
from leadscore.service.telemetry import Metrics
from leadscore.tracking.loading import load_bundle


@dataclass
class Loaded:
    """A model ready to answer: the bundle and its lead checker, swapped as one on reload."""

    bundle: ModelBundle
    checker: LeadChecker
    source: str

    @property
    def model_version(self) -> str:
        return self.bundle.model_version


@dataclass
class ServiceState:
    keys: KeyRing
    insecure: bool
    max_batch: int
    max_body_bytes: int
    model_source: str
    workers: int = 1
    metrics: Metrics = field(default_factory=Metrics)
    loaded: Loaded | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def load_model(source: str) -> Loaded:
    """Load a bundle for serving (single-threaded scoring per request; one worker per core)."""
    bundle = load_bundle(source)
    bundle.num_threads = 1
    loaded = Loaded(bundle=bundle, checker=LeadChecker(bundle), source=source)
    # The model lives until the next reload: keep its objects out of the garbage collector's full
    # passes, which otherwise walk them all in the middle of a request. Unfreezing first lets a
    # model replaced by an earlier reload be collected.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return loaded


async def reload_state(state: ServiceState) -> tuple[str | None, str]:
    """Load off the event loop, then swap in one assignment (readers see the old or the new model)."""
    async with state.reload_lock:
        fresh = await run_in_threadpool(load_model, state.model_source)
        before = state.loaded.model_version if state.loaded else None
        state.loaded = fresh
        state.metrics.reloads.inc()
    return before, fresh.model_version
