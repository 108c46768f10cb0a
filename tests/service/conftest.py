"""A real uvicorn server on a free local port, started once for the service tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

API_KEY = "test-key-7f3a9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    model: Path | str, env: dict[str, str], port: int, *extra: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``leadscore serve``; its logs go to ``log`` (a file, so a full pipe never blocks it)."""
    cmd = [sys.executable, "-m", "leadscore", "serve", "--model", str(model), "--port", str(port), *extra]
    if log is None:
        return subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    with log.open("wb") as err:  # the child keeps its own copy of the handle
        return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=err)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("server did not become ready")


GRACEFUL = (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a graceful shutdown


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


@pytest.fixture(scope="session")
def server(
    trained: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {
        **trained["env"],
        "LEADSCORE_API_KEYS": f"other-key, {API_KEY}",
        "LEADSCORE_MAX_BATCH": "50",  # type: ignore[dict-item]
        "LEADSCORE_MAX_BODY_BYTES": "200000",
    }
    proc = start_server(trained["model_path"], env, port, log=log)  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield {"url": url, "proc": proc, "model_path": trained["model_path"], "log": log}
    finally:
        stop(proc)


@pytest.fixture()
def client(server: dict[str, object]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(server["url"]), headers={"X-API-Key": API_KEY}, timeout=30) as c:
        yield c
