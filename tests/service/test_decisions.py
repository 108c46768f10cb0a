"""A rep's accept or reject through the API on a real server: written as feedback import writes it
(the same table and key: once), with the rep a rep's key names; a rep's key cannot score."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.store.db import open_store
from leadscore.store.decisions import load_decisions
from tests.helpers import API_KEY, Trained, free_port, start_server, stop, wait_ready

REP_KEY = "rep-key-dana-0123456789"


def test_a_reps_decision_is_recorded_once_and_a_reps_key_cannot_score(
    trained: Trained, tmp_path: Path
) -> None:
    line = CliRunner().invoke(app, ["hash-key", REP_KEY, "--rep", "Dana  Ortiz"])
    assert line.exit_code == 0 and line.stdout.strip().endswith(" rep Dana Ortiz")
    keys = tmp_path / "keys"
    keys.write_text(line.stdout)
    keys.chmod(0o600)
    database = f"sqlite:///{tmp_path}/store.db"
    env = {**trained["env"], "LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_API_KEY_FILE": str(keys),
           "LEADSCORE_DATABASE_URL": database}  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(trained["model_path"], env, port, log=tmp_path / "server.log")
    try:
        wait_ready(url, proc)
        rep = {"X-API-Key": REP_KEY}
        body = {"decision": "reject", "reason": "Not ICP", "decided_at": "2026-12-05T10:00:00Z"}
        first = httpx.post(f"{url}/v1/leads/L-7/decision", json=body, headers=rep, timeout=10)
        assert first.status_code == 200, first.text
        said = first.json()
        assert (said["decision"], said["reason"], said["rep"], said["recorded"]) == (
            "rejected",
            "not ICP",
            "Dana Ortiz",
            True,
        )
        again = httpx.post(f"{url}/v1/leads/L-7/decision", json=body, headers=rep, timeout=10).json()
        assert again["recorded"] is False  # the same decision: once
        crm = {"X-API-Key": API_KEY}
        accepted = {"decision": "accepted", "rep": "Sam Lee"}
        assert (
            httpx.post(f"{url}/v1/leads/L-8/decision", json=accepted, headers=crm, timeout=10).status_code
            == 200
        )
        for sent, headers, field in (
            ({"decision": "accepted"}, crm, "rep"),  # the CRM's key names nobody
            ({"decision": "rejected", "reason": "too expensive"}, rep, "reason"),
            ({"decision": "maybe"}, rep, "decision"),
            ({"decision": "rejected", "reason": "duplicate", "decided_at": "someday"}, rep, "decided_at"),
        ):
            bad = httpx.post(f"{url}/v1/leads/L-9/decision", json=sent, headers=headers, timeout=10)
            assert bad.status_code == 422 and bad.json()["field"] == field, bad.text
        assert httpx.post(f"{url}/v1/score", json={"lead_id": 1}, headers=rep, timeout=10).status_code == 403
        assert httpx.post(f"{url}/v1/leads/L-9/decision", json=body, timeout=10).status_code == 401
    finally:
        stop(proc)
    stored = load_decisions(open_store(database)).sort_values("lead_id")
    assert list(stored["lead_id"]) == ["L-7", "L-8"]
    assert list(stored["rep"]) == ["Dana Ortiz", "Sam Lee"] and stored["reason"].iloc[0] == "not ICP"
