"""Test helpers shared by the suite: seeded lead factory, private MLflow environment, free port, real server.

Fixtures live in ``conftest.py``; what tests import lives here (as in full-stack-fastapi-template's
``tests/utils/``), so no test imports from a conftest.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pandas as pd
import pyarrow as pa

from leadscore.config import get_settings
from leadscore.data.synthetic import GeneratorConfig, generate

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
XEDUCATION = SHARED_DATA / "xeducation" / "Leads.csv"
API_KEY = "test-key-7f3a9-b2c4d6e8"
ADMIN_KEY = "admin-key-5e1f0a-93c7d2b8"
GRACEFUL = (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a graceful shutdown


class Trained(TypedDict):
    """One real training run in a private MLflow store (the session's ``trained`` fixture)."""

    root: Path
    env: dict[str, str]
    payload: dict[str, Any]
    model_path: Path


class Server(TypedDict):
    """A real ``leadscore serve`` process (the session's ``server`` fixture)."""

    url: str
    proc: subprocess.Popen[bytes]
    model_path: Path
    log: Path


@functools.lru_cache(maxsize=8)
def make_tables(n: int, seed: int, fault_rate: float = 0.02, drift: bool = False) -> dict[str, pa.Table]:
    """Seeded synthetic tables (cached: generation is deterministic)."""
    return generate(GeneratorConfig(leads=n, seed=seed, fault_rate=fault_rate, drift=drift))


def make_leads(n: int, seed: int, fault_rate: float = 0.02, drift: bool = False) -> pd.DataFrame:
    """A fresh copy of the seeded leads table."""
    return make_tables(n, seed, fault_rate, drift)["leads"].to_pandas()


@contextlib.contextmanager
def private_env(env: dict[str, str]) -> Iterator[None]:
    """Set LEADSCORE_* variables (a private MLflow store ...) for a block, then restore them."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


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


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)
