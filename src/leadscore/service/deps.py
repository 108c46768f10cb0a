"""Shared state of a running service and the dependencies routes use."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from leadscore.bundle import ModelBundle
from leadscore.service.auth import KeyRing
from leadscore.service.leads import LeadChecker
from leadscore.service.telemetry import Metrics


@dataclass
class Loaded:
    """A model ready to answer: the bundle and its lead checker, swapped as one on reload."""

    bundle: ModelBundle
    checker: LeadChecker
    source: str

    @property
    def model_version(self) -> str:
        reg = self.bundle.meta.get("registered")
        if reg:
            return f"{reg['name']}/{reg['version']}"
        return self.bundle.version


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


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.leadscore
    return state


def get_model(state: Annotated[ServiceState, Depends(get_state)]) -> Loaded:
    loaded = state.loaded
    if loaded is None:
        raise HTTPException(status_code=503, detail="model not loaded")
    return loaded


StateDep = Annotated[ServiceState, Depends(get_state)]
ModelDep = Annotated[Loaded, Depends(get_model)]
