"""The service with sales' pages: ``leadscore serve`` builds this (the API alone is
``service.app.create_app``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from leadscore.config import Settings, get_settings
from leadscore.service.app import create_app as create_api
from leadscore.web.pages import StoreUnavailable, router
from leadscore.web.site import Site


def create_app(
    model_source: str | None = None,
    *,
    insecure: bool | None = None,
    settings: Settings | None = None,
    accounts_model: str | None = None,
) -> FastAPI:
    """The API (``service.app.create_app``) and the pages under ``/app``."""
    settings = settings or get_settings()
    app = create_api(model_source, insecure=insecure, settings=settings, accounts_model=accounts_model)
    state = app.state.leadscore
    site = app.state.leadscore_site = Site(settings, state.keys, state.insecure)
    app.include_router(router)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_: Request, exc: StoreUnavailable) -> Response:
        return site.refused(503, f"The store cannot be reached: {exc}. Scoring goes on; try again shortly.")

    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several workers: everything from LEADSCORE_* settings."""
    return create_app()
