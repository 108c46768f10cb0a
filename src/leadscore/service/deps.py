"""The dependencies routes use, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from leadscore.service.loaded import Loaded
from leadscore.service.state import ServiceState


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
