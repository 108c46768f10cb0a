"""Alerts delivered to a real local HTTP receiver by a real server: signed, at least once, through a
receiver outage and a service restart, each event taken once per idempotency key."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from leadscore.scoring.bundle import ModelBundle
from tests.helpers import ADMIN_KEY, API_KEY, Trained, free_port, start_server, stop, wait_ready

SECRET = "webhook-secret-0123456789"


class Receiver:
    """A CRM's endpoint on a local port: checks each POST's signature and timestamp, answers 503 while
    ``down``, and keeps the events it took (2xx) by their idempotency key."""

    def __init__(self, port: int = 0) -> None:
        self.down = False
        self.taken: Counter[str] = Counter()
        self.events: dict[str, dict[str, Any]] = {}
        self.refused = 0
        self.bad_signatures = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers["X-Leadscore-Timestamp"]
                mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
                fresh = abs(time.time() - int(stamp)) < 300  # an old timestamp is a replay
                if not (
                    hmac.compare_digest(f"sha256={mac}", self.headers["X-Leadscore-Signature"]) and fresh
                ):
                    owner.bad_signatures += 1
                    self.send_response(401)
                elif owner.down:
                    owner.refused += 1
                    self.send_response(503)
                else:
                    key = self.headers["Idempotency-Key"]
                    owner.taken[key] += 1
                    owner.events[key] = json.loads(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/leadscore"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _until(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.fixture()
def mqls(trained: Trained, synthetic_dir: Path) -> list[dict[str, Any]]:
    """Leads the model makes MQLs, as the CRM sends them (new ids: never logged before)."""
    bundle = ModelBundle.load(trained["model_path"])
    leads = pd.read_parquet(synthetic_dir / "leads.parquet").head(2000)
    scored = bundle.score_frame(leads)
    chosen = leads.loc[scored.mql].head(12)
    out = []
    for i, row in enumerate(chosen.to_dict("records")):
        sent = {f: (None if pd.isna(row.get(f)) else row.get(f)) for f in bundle.fields}
        out.append({**json.loads(json.dumps(sent, default=str)), "lead_id": f"W-{i}"})
    assert len(out) == 12
    return out


def test_alerts_survive_a_receiver_outage_and_a_restart(
    trained: Trained, mqls: list[dict[str, Any]], tmp_path: Path
) -> None:
    receiver = Receiver()
    receiver.down = True
    port = free_port()
    env = {
        **trained["env"],
        "LEADSCORE_API_KEYS": API_KEY,
        "LEADSCORE_ADMIN_KEYS": ADMIN_KEY,
        "LEADSCORE_DATABASE_URL": f"sqlite:///{tmp_path}/store.db",
        "LEADSCORE_WEBHOOKS": receiver.url,
        "LEADSCORE_WEBHOOK_SECRET": SECRET,
        "LEADSCORE_WEBHOOK_MAX_BACKOFF": "0.5",
        "LEADSCORE_WARM_SCORERS": "true",
    }
    url = f"http://127.0.0.1:{port}"
    proc = start_server(trained["model_path"], env, port, log=tmp_path / "server.log")
    try:
        wait_ready(url, proc)
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
            for lead in mqls[:4]:  # one by one, then a batch
                assert c.post("/v1/score", json=lead).json()["mql"] is True
            batch = c.post("/v1/score/batch", json={"leads": mqls[4:8]})
            assert batch.status_code == 200 and all(r["mql"] for r in batch.json()["results"])
            admin = {"X-API-Key": ADMIN_KEY}
            # The receiver is down: every event waits in the store, retried, none lost or taken.
            assert _until(lambda: receiver.refused >= 8)
            status = c.get("/v1/admin/webhooks", headers=admin).json()
            assert status["enabled"] and status["pending"] == 8 and status["delivered"] == 0
            assert status["troubled"] and status["troubled"][0]["error"] == "HTTP 503"
            assert c.get("/v1/admin/webhooks").status_code == 403  # a scoring key may not look
            receiver.down = False
            assert _until(lambda: len(receiver.taken) == 8), receiver.taken
            # Scored again, an MQL is no new event; the events are the leads that crossed, signed.
            assert c.post("/v1/score", json=mqls[0]).status_code == 200
            time.sleep(1.5)
        assert len(receiver.taken) == 8 and set(receiver.taken.values()) == {1}
        assert receiver.bad_signatures == 0
        sent = {e["lead_id"] for e in receiver.events.values()}
        assert sent == {lead["lead_id"] for lead in mqls[:8]}
        kinds = {e["event"] for e in receiver.events.values()}
        assert kinds <= {"lead.mql", "lead.respond_within_1h"}
        assert all(e["id"] == key for key, e in receiver.events.items())
        # The receiver goes away; the service is stopped before it can deliver: a restart sends them.
        receiver.close()
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
            for lead in mqls[8:]:
                assert c.post("/v1/score", json=lead).json()["mql"] is True
            admin = {"X-API-Key": ADMIN_KEY}
            assert _until(lambda: c.get("/v1/admin/webhooks", headers=admin).json()["pending"] == 4)
    finally:
        stop(proc)
    again = Receiver(receiver.port)
    try:
        proc = start_server(trained["model_path"], env, port, log=tmp_path / "server2.log")
        wait_ready(url, proc)
        assert _until(lambda: len(again.taken) == 4), again.taken
        assert {e["lead_id"] for e in again.events.values()} == {lead["lead_id"] for lead in mqls[8:]}
        assert set(again.taken.values()) == {1} and again.bad_signatures == 0
        status = httpx.get(f"{url}/v1/admin/webhooks", headers={"X-API-Key": ADMIN_KEY}, timeout=10).json()
        assert (status["pending"], status["delivered"], status["failed"]) == (0, 12, 0)
    finally:
        stop(proc)
        again.close()


def test_wrong_webhook_settings_stop_the_server_in_one_line(trained: Trained, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from leadscore.cli import app
    from tests.helpers import private_env

    for extra, says in (
        (
            {"LEADSCORE_WEBHOOKS": "ftp://crm/hook"},
            "LEADSCORE_WEBHOOKS: 'ftp://crm/hook' is not an http(s) URL",
        ),
        ({"LEADSCORE_WEBHOOKS": "http://crm/hook", "LEADSCORE_WEBHOOK_SECRET": "short"}, "at least 16"),
        ({"LEADSCORE_WEBHOOKS": "http://crm/hook", "LEADSCORE_WEBHOOK_FORMAT": "xml"}, "'xml' is not 'json'"),
    ):
        env = {**trained["env"], "LEADSCORE_API_KEYS": API_KEY, **extra}
        with private_env(env):
            from leadscore.config import get_settings

            get_settings.cache_clear()
            result = CliRunner().invoke(app, ["serve", "--model", str(trained["model_path"]), "--port", "1"])
            get_settings.cache_clear()
        assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
