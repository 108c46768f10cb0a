"""The dependencies routes use, as ``Annotated`` aliases. They are ``async``: FastAPI runs a plain
function dependency in its thread pool, two hand-offs per request that cost a one-lead answer about
0.3 ms (benchmarks/bench_service.py); these only read the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from leadscore.service.loaded import Loaded
from leadscore.service.state import ServiceState


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.leadscore
    return state


async def get_model(state: Annotated[ServiceState, Depends(get_state)]) -> Loaded:
    loaded = state.loaded
    if loaded is None:
        raise HTTPException(status_code=503, detail="model not loaded")
    return loaded


StateDep = Annotated[ServiceState, Depends(get_state)]
ModelDep = Annotated[Loaded, Depends(get_model)]
