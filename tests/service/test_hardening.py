"""The service under bad input, bad keys, a damaged model and load, against real servers (issue 13)."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from leadscore.scoring.batch import score_output
from leadscore.scoring.bundle import BOOSTER_FILE, CHECKSUM_FILE, ModelBundle
from tests.helpers import (
    ADMIN_KEY,
    API_KEY,
    GRACEFUL,
    Server,
    Trained,
    free_port,
    make_leads,
    one_byte_off,
    start_server,
    stop,
    wait_ready,
)

pytestmark = pytest.mark.e2e


def _lead(i: int) -> dict[str, Any]:
    row = make_leads(300, 41).iloc[i]
    return dict(json.loads(pd.Series(row).to_json(date_format="iso")))


# --- item 8: one rule for types and impossible values ------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("web_visits_30d", -5), ("demo_requests", -3), ("email_opens_30d", 1e308), ("employee_count", -1)],
)
def test_an_impossible_value_is_a_missing_value_with_a_warning(
    client: httpx.Client, server: Server, field: str, value: float
) -> None:
    lead = {**_lead(4), field: value}
    r = client.post("/v1/score", json=lead)
    assert r.status_code == 200, r.text
    body = r.json()
    assert any(w.startswith(f"field '{field}': impossible value") for w in body["warnings"]), body["warnings"]
    as_missing = client.post("/v1/score", json={**lead, field: None}).json()
    assert body["p_sql"] == as_missing["p_sql"]  # exactly a missing value
    batch = score_output(ModelBundle.load(server["model_path"]), pd.DataFrame([lead]))
    assert float(batch["p_sql"].iloc[0]) == body["p_sql"]  # and exactly what batch scoring gives


@pytest.mark.parametrize("value", [True, False, "lots", "Infinity", [1], {"n": 1}])
def test_a_wrong_type_for_a_number_is_422_naming_the_field(client: httpx.Client, value: Any) -> None:
    r = client.post("/v1/score", json={**_lead(2), "employee_count": value})
    assert r.status_code == 422 and r.json()["field"] == "employee_count"


def test_the_openapi_schema_says_what_the_server_accepts(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    number = doc["components"]["schemas"]["LeadIn"]["properties"]["employee_count"]
    kinds = {s.get("type") for s in number["anyOf"]}
    assert kinds == {"number", "null", "string"} and "boolean" not in json.dumps(number)
    pattern = next(s["pattern"] for s in number["anyOf"] if "pattern" in s)
    assert re.match(pattern, "1,200") and not re.match(pattern, "lots")
    # item 19: health and readiness are open, and the document says so per operation
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert doc["paths"]["/readyz"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/v1/score"]["post"] and doc["security"]


# --- items 17 and 18: offline docs, one JSON line per event ----------------------------------------


def test_docs_are_served_from_the_server_and_fetch_nothing(client: httpx.Client, server: Server) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert "/v1/score/batch" in html and "employee_count" in html
    assert not re.search(r"<script|(src|href)=\"https?://", html), "the docs page must not load anything"
    assert httpx.get(f"{server['url']}/docs").status_code == 401  # with the key, like the rest


def test_every_log_line_is_one_json_object(client: httpx.Client, server: Server) -> None:
    for i in range(5):
        client.post("/v1/score", json=_lead(i))
    client.get("/docs")
    lines = Path(server["log"]).read_text().splitlines()
    after_start = [x for x in lines if not x.startswith("serving ")]
    assert after_start and all(x.startswith("{") for x in after_start), [
        x for x in after_start if not x.startswith("{")
    ][:3]
    for line in after_start:
        json.loads(line)
    assert not any("Deprecat" in x and not x.startswith("{") for x in lines)


# --- items 15 and 16: keys -------------------------------------------------------------------------


def _start(
    trained: Trained, tmp_path: Path, env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    proc = start_server(trained["model_path"], {**trained["env"], **env}, port, *extra, log=log)
    return proc, f"http://127.0.0.1:{port}", log


def test_only_admin_keys_may_reload(trained: Trained, tmp_path: Path) -> None:
    proc, url, _ = _start(
        trained, tmp_path, {"LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_ADMIN_KEYS": ADMIN_KEY}
    )
    try:
        wait_ready(url, proc)
        assert httpx.post(f"{url}/v1/admin/reload", headers={"X-API-Key": API_KEY}).status_code == 403
        assert (
            httpx.post(f"{url}/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}, timeout=60).status_code
            == 200
        )
        assert (
            httpx.post(f"{url}/v1/score", headers={"X-API-Key": ADMIN_KEY}, json=_lead(1)).status_code == 200
        )
    finally:
        assert stop(proc) in GRACEFUL


def test_short_keys_loose_key_files_and_exposed_insecure_servers(trained: Trained, tmp_path: Path) -> None:
    proc, _, log = _start(trained, tmp_path, {"LEADSCORE_API_KEYS": "short"})
    assert proc.wait(timeout=60) == 2 and "shorter than 16 characters" in log.read_text()
    keyfile = tmp_path / "keys.txt"
    line = subprocess.run(
        [sys.executable, "-m", "leadscore", "hash-key", "a-long-enough-crm-key-1", "--admin"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert line.strip().endswith(" admin")
    keyfile.write_text(line)
    keyfile.chmod(0o666)
    proc, url, log = _start(
        trained, tmp_path, {"LEADSCORE_API_KEYS": "", "LEADSCORE_API_KEY_FILE": str(keyfile)}
    )
    try:
        wait_ready(url, proc)
        assert "can be read or written by others" in log.read_text()
        headers = {"X-API-Key": "a-long-enough-crm-key-1"}
        assert httpx.post(f"{url}/v1/admin/reload", headers=headers, timeout=60).status_code == 200
    finally:
        stop(proc)
    proc, _, log = _start(
        trained, tmp_path, {"LEADSCORE_API_KEYS": ""}, "--insecure-dev", "--host", "0.0.0.0"
    )
    assert proc.wait(timeout=60) == 2 and "--allow-exposed-insecure" in log.read_text()


def test_docs_can_be_switched_off(trained: Trained, tmp_path: Path) -> None:
    proc, url, _ = _start(trained, tmp_path, {"LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_DOCS": "off"})
    try:
        wait_ready(url, proc)
        headers = {"X-API-Key": API_KEY}
        assert httpx.get(f"{url}/docs", headers=headers).status_code == 404
        assert httpx.get(f"{url}/openapi.json", headers=headers).status_code == 404
        assert httpx.post(f"{url}/v1/score", headers=headers, json=_lead(0)).status_code == 200
    finally:
        stop(proc)


# --- item 2: a damaged model never takes the service down -------------------------------------------


def test_reloading_a_damaged_model_is_409_and_the_old_one_keeps_serving(
    trained: Trained, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained["model_path"], model)
    port = free_port()
    env = {**trained["env"], "LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_ADMIN_KEYS": ADMIN_KEY}
    proc = start_server(model, env, port, log=tmp_path / "log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        before = httpx.post(f"{url}/v1/score", headers={"X-API-Key": API_KEY}, json=_lead(3)).json()
        booster = model / "artifacts" / "bundle" / BOOSTER_FILE
        text = booster.read_bytes()
        booster.write_bytes(text[: len(text) // 3])  # truncated, as a half-copied file would be
        r = httpx.post(f"{url}/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}, timeout=60)
        assert r.status_code == 409 and "damaged" in r.json()["detail"]
        # An older bundle without checksums, one byte off: LightGBM would abort the server parsing it.
        booster.write_bytes(text)
        (model / "artifacts" / "bundle" / CHECKSUM_FILE).unlink()
        one_byte_off(booster)
        r = httpx.post(f"{url}/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}, timeout=60)
        assert r.status_code == 409 and "its booster cannot be read" in r.json()["detail"]
        after = httpx.post(f"{url}/v1/score", headers={"X-API-Key": API_KEY}, json=_lead(3))
        assert after.status_code == 200 and after.json()["p_sql"] == before["p_sql"]
        assert proc.poll() is None
    finally:
        assert stop(proc) in GRACEFUL


# --- item 5: load is shed instead of piling up ------------------------------------------------------


@pytest.mark.serial  # times health under a storm: not beside another worker's training
def test_a_storm_of_batches_is_shed_and_health_stays_fast(trained: Trained, tmp_path: Path) -> None:
    proc, url, _ = _start(
        trained,
        tmp_path,
        {"LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_MAX_BATCHES": "1", "LEADSCORE_MAX_BATCH": "1000"},
    )
    leads = [_lead(i % 300) for i in range(1000)]
    body = json.dumps({"leads": leads}).encode()
    statuses: list[int] = []
    retry_after: set[str] = set()
    health: list[float] = []
    stop_at = time.monotonic() + 8
    try:
        wait_ready(url, proc)

        def storm() -> None:
            with httpx.Client(
                headers={"X-API-Key": API_KEY, "content-type": "application/json"}, timeout=60
            ) as c:
                for _ in range(200):  # bounded in count and in time
                    if time.monotonic() > stop_at:
                        return
                    r = c.post(f"{url}/v1/score/batch", content=body)
                    statuses.append(r.status_code)
                    if r.status_code == 503:
                        retry_after.add(r.headers.get("retry-after", ""))

        def probe() -> None:
            with httpx.Client(timeout=10) as c:
                while time.monotonic() < stop_at:
                    t = time.perf_counter()
                    assert c.get(f"{url}/healthz").status_code == 200
                    health.append(time.perf_counter() - t)
                    time.sleep(0.05)

        threads = [threading.Thread(target=storm) for _ in range(8)] + [threading.Thread(target=probe)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        stop(proc)
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, set(statuses)
    assert retry_after == {"1"}
    assert len(health) > 20
    # The target (p99 under 200 ms) is measured in benchmarks/bench_service.py on a quiet machine;
    # here, on a shared CI machine, health must simply never queue behind the scoring work.
    assert statistics.median(health) < 0.2 and max(health) < 2.0, (statistics.median(health), max(health))


def test_a_lead_id_longer_than_the_store_keeps_is_refused_at_the_door(client: httpx.Client) -> None:
    assert client.post("/v1/score", json={**_lead(3), "lead_id": "x" * 200}).status_code == 200
    r = client.post("/v1/score", json={**_lead(3), "lead_id": " " + "x" * 201})
    assert r.status_code == 422 and r.json()["field"] == "lead_id"
    assert "a lead id of 201 characters (at most 200)" in r.json()["detail"]
    batch = client.post("/v1/score/batch", json={"leads": [{**_lead(3), "lead_id": "y" * 500}, _lead(4)]})
    bad, good = batch.json()["results"]  # one bad lead never takes its batch with it
    assert bad["error"]["field"] == "lead_id" and 0 < good["p_sql"] < 1
