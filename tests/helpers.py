"""Test helpers shared by the suite: seeded lead factory, private MLflow environment, free port, real server.

Fixtures live in ``conftest.py``; what tests import lives here (as in full-stack-fastapi-template's
``tests/utils/``), so no test imports from a conftest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NotRequired, TypedDict, TypeVar

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
T = TypeVar("T")


class Trained(TypedDict):
    """One real training run in a private MLflow store (the session's ``trained`` fixture)."""

    root: Path
    env: dict[str, str]
    payload: dict[str, Any]
    model_path: Path
    review_by: date  # the contract it was trained with is due for review then (after today)


class Server(TypedDict):
    """A real ``leadscore serve`` process (the session's ``server`` fixture)."""

    url: str
    proc: subprocess.Popen[bytes]
    model_path: Path
    log: Path
    database: NotRequired[str]  # the server's store (its score log)


@functools.lru_cache(maxsize=8)
def current_contract(folder: Path) -> tuple[Path, date]:
    """The shipped default contract, agreed a month before the test's today and due for review two
    months after it: tests that expect no overdue review pass on any day they run. Returns its path
    and its review date."""
    import yaml

    from leadscore.config import find_config

    raw = yaml.safe_load(find_config("cutoffs", "default").read_text())
    today = date.today()
    review_by = today + timedelta(days=60)
    raw.update(agreed_on=(today - timedelta(days=30)).isoformat(), review_by=review_by.isoformat())
    path = folder / "current-contract.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path, review_by


def make_tables(
    n: int,
    seed: int,
    fault_rate: float = 0.02,
    drift: bool = False,
    segment_effect: bool = False,
    observed_until: str | None = None,
) -> dict[str, pa.Table]:
    """Seeded synthetic tables, exported a week after the last lead (recent windows open) unless
    ``observed_until`` says otherwise ("uncut": every lead's whole future)."""
    config = GeneratorConfig(
        leads=n,
        seed=seed,
        fault_rate=fault_rate,
        drift=drift,
        segment_effect=segment_effect,
        observed_until=observed_until,
    )
    return generate(config)


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


@functools.cache
def _migrated_mlflow_store() -> bytes:
    """An empty MLflow SQLite store as MLflow itself creates it (tables made, every migration run),
    made once per session: creating one takes MLflow 3 s or more, and a dozen tests need their own."""
    import tempfile

    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db").search_experiments()
        return (Path(tmp) / "mlflow.db").read_bytes()


def mlflow_env(root: Path) -> dict[str, str]:
    """The settings of a private, empty MLflow store, artifact root and models folder under ``root``
    (the store is a copy of one MLflow created and migrated earlier in the session)."""
    store = root / "mlruns" / "mlflow.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    if not store.exists():
        store.write_bytes(_migrated_mlflow_store())
    return {
        "LEADSCORE_TRACKING_URI": f"sqlite:///{store}",
        "LEADSCORE_ARTIFACT_ROOT": str(root / "mlruns" / "artifacts"),
        "LEADSCORE_MODELS_DIR": str(root / "models"),
    }


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(make())`` on a loop of its own, in a thread of its own: an earlier test may
    have left an event loop marked running in this thread (as the notebook test notes)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def asgi_score(
    app: Any,
    body: bytes,
    *,
    query: bytes = b"",
    rid: str | None = None,
    at_last_byte: Callable[[], Any] | None = None,
) -> tuple[int, bytes, Any]:
    """``POST /v1/score`` straight through an ASGI app (no server): the status, the body, and what
    ``at_last_byte`` returned as the response's last byte was sent."""
    inbox = [{"type": "http.request", "body": body, "more_body": False}]
    status, chunks, seen = [0], [], [None]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False) and at_last_byte is not None:
                seen[0] = at_last_byte()

    headers = [(b"content-type", b"application/json"), (b"host", b"t")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/score",
        "raw_path": b"/v1/score",
        "query_string": query,
        "root_path": "",
        "headers": [*headers, (b"x-request-id", rid.encode())] if rid else headers,
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
    }
    await app(scope, receive, send)
    return status[0], b"".join(chunks), seen[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    model: Path | str, env: dict[str, str], port: int, *extra: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``leadscore serve``; its logs go to ``log`` (a file, so a full pipe never blocks it).

    Batch scorers start with the first batch unless ``env`` asks for them at start (most servers of
    the suite never get a batch; ``tests/service/test_batches.py`` tests the warm start)."""
    cmd = [sys.executable, "-m", "leadscore", "serve", "--model", str(model), "--port", str(port), *extra]
    env = {"LEADSCORE_WARM_SCORERS": "false", **env}
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
            pass
        time.sleep(0.1)  # not up, or not ready yet (503): ask again shortly, not in a tight loop
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


def find_postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program (initdb, pg_ctl) from PATH or Debian's versioned folder."""
    import glob
    import shutil

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throwaway PostgreSQL server in a temporary folder on a free local port (run as the
    ``postgres`` user when the tests run as root: initdb refuses root)."""

    def __init__(self) -> None:
        import pwd
        import tempfile

        initdb, pg_ctl = find_postgres_bin("initdb"), find_postgres_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL is not installed: run `make postgres` (Debian's postgresql)")
        self.pg_ctl: str = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="leadscore-pg-"))
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o755)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        subprocess.run(
            [
                *self.prefix,
                initdb,
                "-D",
                str(self.data),
                "-U",
                "leadscore",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        )
        subprocess.run(
            [
                *self.prefix,
                self.pg_ctl,
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        self._databases = 0

    def new_database(self) -> str:
        """A fresh, empty database and its SQLAlchemy URL."""
        import psycopg

        self._databases += 1
        name = f"t{self._databases}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=leadscore dbname=postgres", autocommit=True
        ) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://leadscore@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        import shutil

        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Page:
    """What a page did when it was opened: its text, a screenshot and anything that went wrong."""

    text: str
    screenshot: Path
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    svg_count: int = 0


OpenPage = Callable[[Path], Page]  # the ``open_page`` fixture: an HTML file -> what opening it did


def one_byte_off(booster: Path) -> None:
    """Change the first tree's leaf count by one byte: a file LightGBM aborts on (not an exception)."""
    text = booster.read_text()
    at = text.index("num_leaves=") + len("num_leaves=")
    booster.write_text(text[:at] + ("9" if text[at] != "9" else "8") + text[at + 1 :])


def train_accounts_spec(data: Path, root: Path, *extra: str) -> tuple[dict[str, str], dict[str, Any]]:
    """``leadscore train DATA --spec synthetic-accounts`` (with ``extra`` flags) into a private MLflow
    store under ``root``, without the capacity search: its settings and its ``--json`` object."""
    import json

    from typer.testing import CliRunner

    from leadscore.cli import app

    env = {"LEADSCORE_SEARCH_TRIALS": "0", **mlflow_env(root)}
    contract, _ = current_contract(root)
    with private_env(env):
        args = [
            "train",
            str(data),
            "--spec",
            "synthetic-accounts",
            *extra,
            "--cutoff",
            str(contract),
            "--json",
        ]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return env, json.loads(result.stdout)


def rep_key_file(folder: Path, key: str, name: str) -> Path:
    """An API key file (mode 600) holding a named sales rep's key, as ``leadscore hash-key --rep`` writes it."""
    from leadscore.service.auth import hash_key

    path = folder / "keys"
    path.write_text(f"sha256:{hash_key(key)} rep {' '.join(name.split())}\n")
    path.chmod(0o600)
    return path


def sign_in(web: httpx.Client, key: str) -> None:
    """Sign a client in to the sales pages with a rep's or admin's key (the form and its token)."""
    token = web.get("/app/sign-in").cookies["leadscore_signin"]
    signed = web.post("/app/sign-in", data={"key": key, "csrf": token})
    assert signed.status_code == 303, signed.text
