"""A real uvicorn server on a free local port, started once for the service tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import API_KEY, Server, Trained, free_port, start_server, stop, wait_ready


@pytest.fixture(scope="session")
def server(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {
        **trained["env"],
        "LEADSCORE_API_KEYS": f"another-crm-key-0123, {API_KEY}",
        "LEADSCORE_MAX_BATCH": "50",
        "LEADSCORE_MAX_BODY_BYTES": "200000",
        # The score log of this server (previous and trend): a store of its own.
        "LEADSCORE_DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('store')}/leadscore.db",
    }
    proc = start_server(trained["model_path"], env, port, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield {
            "url": url,
            "proc": proc,
            "model_path": trained["model_path"],
            "log": log,
            "database": env["LEADSCORE_DATABASE_URL"],
        }
    finally:
        stop(proc)


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(server["url"]), headers={"X-API-Key": API_KEY}, timeout=30) as c:
        yield c
