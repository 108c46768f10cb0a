"""Every answer is logged to the store; a lead scored again shows its previous answer and trend."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pandas as pd
import pytest

from leadscore.store.db import open_store
from leadscore.store.scores import served_scores
from tests.helpers import API_KEY, Server, Trained, free_port, make_leads, start_server, stop, wait_ready

pytestmark = pytest.mark.e2e


def _lead(lead_id: int, **changes: object) -> dict[str, object]:
    row = make_leads(400, 95, fault_rate=0.0).iloc[11]
    lead = json.loads(pd.Series(row).to_json(date_format="iso"))
    return {**lead, "lead_id": lead_id, **changes}


def _metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


COLD = {"demo_requests": 0, "pricing_page_views_7d": 0, "pricing_page_views_total": 0, "web_visits_30d": 0}
HOT = {"demo_requests": 2, "pricing_page_views_7d": 6, "pricing_page_views_total": 9, "web_visits_30d": 25}


def test_a_lead_scored_again_shows_its_previous_answer_and_trend(
    client: httpx.Client, server: Server
) -> None:
    first = client.post("/v1/score", json=_lead(990_001, **COLD)).json()
    assert (first["previous"], first["trend"], first["crossed_cutoff"]) == (None, None, None)
    assert first["changes"] is None  # nothing to compare with

    again = client.post("/v1/score", json=_lead(990_001, **COLD)).json()
    assert again["previous"]["p_sql"] == first["p_sql"] and again["previous"]["grade"] == first["grade"]
    assert again["trend"] == "steady" and again["crossed_cutoff"] is False
    assert again["changes"] == []  # the same fields: nothing moved

    hot = client.post("/v1/score", json=_lead(990_001, **HOT))
    body = hot.json()
    assert body["p_sql"] >= first["p_sql"] + 0.05, (first["p_sql"], body["p_sql"])
    assert body["trend"] == "improving" and body["previous"]["p_sql"] == first["p_sql"]
    assert body["crossed_cutoff"] is (body["mql"] != first["mql"])
    # Why it moved: the fields that changed, their values then and now, their points, largest first.
    changes = body["changes"]
    assert changes and {c["field"] for c in changes} <= set(HOT)
    assert [abs(c["points"]) for c in changes] == sorted((abs(c["points"]) for c in changes), reverse=True)
    top = changes[0]
    assert top["before"] == str(COLD[top["field"]]) and top["after"] == f"{HOT[top['field']]:g}"
    assert top["text"] == f"{top['label']}: {top['before']} -> {top['after']}, {top['points']:+.0f} points"
    assert sum(c["points"] for c in changes) > 0  # P(SQL) rose

    batch = client.post("/v1/score/batch", json={"leads": [_lead(990_001, **COLD), _lead(990_002)]}).json()
    cooled, new = batch["results"]
    assert cooled["trend"] == "declining" and cooled["previous"]["p_sql"] == body["p_sql"]
    assert cooled["changes"] and {c["field"] for c in cooled["changes"]} <= set(HOT)  # the batch too
    assert all(c["points"] < 0 for c in cooled["changes"])
    assert new["previous"] is None and new["changes"] is None

    # Every answer is in the store, with the request id the client saw; no personal data.
    store = open_store(server["database"])
    deadline = time.monotonic() + 15
    while True:  # written within a moment (other tests' answers go to the same store)
        logged = served_scores(store, pd.Timestamp("2000-01-01").to_pydatetime())
        mine = logged[logged["lead_id"].isin(["990001", "990002"])]
        if len(mine) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(mine) == 5 and set(mine["source"]) == {"api"}
    assert hot.headers["x-request-id"] in set(mine["request_id"])
    assert "email" not in mine.iloc[0]["inputs"] and "job_title" in mine.iloc[0]["inputs"]
    assert _metric(client, "leadscore_score_log_dropped") == 0
    status = client.get("/v1/model").json()["score_log"]
    assert status["enabled"] and status["connected"] and status["trend_threshold"] == 0.05
    assert status["written"] >= 5 and status["dropped"] == 0


def test_the_service_keeps_scoring_when_the_database_is_down(trained: Trained, tmp_path) -> None:
    port, log = free_port(), tmp_path / "server.log"
    env = {
        **trained["env"],
        "LEADSCORE_API_KEYS": API_KEY,
        "LEADSCORE_DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone",
    }
    proc = start_server(trained["model_path"], env, port, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
            for i in range(3):
                r = client.post("/v1/score", json=_lead(991_000 + i))
                assert r.status_code == 200 and r.json()["previous"] is None
            deadline = time.monotonic() + 10
            while _metric(client, "leadscore_score_log_dropped") < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _metric(client, "leadscore_score_log_dropped") == 3
            assert _metric(client, "leadscore_score_log_written") == 0
            status = client.get("/v1/model").json()["score_log"]
            assert status["enabled"] and not status["connected"] and status["dropped"] == 3
    finally:
        stop(proc)
    assert "score log" in log.read_text() and "database unavailable" in log.read_text()


def _serving(trained: Trained, tmp_path, extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**trained["env"], "LEADSCORE_API_KEYS": API_KEY, **extra}
    proc = start_server(trained["model_path"], env, port, log=tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def test_logging_turned_off_writes_nothing_and_answers_no_previous(trained: Trained, tmp_path) -> None:
    db = tmp_path / "log.db"
    proc, url = _serving(
        trained, tmp_path, {"LEADSCORE_LOG_SCORES": "false", "LEADSCORE_DATABASE_URL": f"sqlite:///{db}"}
    )
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
            answers = [client.post("/v1/score", json=_lead(992_001, **COLD)).json() for _ in range(2)]
            batch = client.post("/v1/score/batch", json={"leads": [_lead(992_001, **HOT)]}).json()
            assert all(a["previous"] is None and a["trend"] is None for a in [*answers, *batch["results"]])
            status = client.get("/v1/model").json()["score_log"]
            assert not status["enabled"] and status["written"] == 0
            assert _metric(client, "leadscore_score_log_written") == 0
    finally:
        stop(proc)
    assert (
        not db.exists()
        or open_store(f"sqlite:///{db}")
        .engine.connect()
        .exec_driver_sql("select count(*) from scores")
        .scalar_one()
        == 0
    )


def test_the_trend_threshold_comes_from_the_settings(trained: Trained, tmp_path) -> None:
    proc, url = _serving(
        trained,
        tmp_path,
        {"LEADSCORE_TREND_THRESHOLD": "0.5", "LEADSCORE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"},
    )
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
            assert client.get("/v1/model").json()["score_log"]["trend_threshold"] == 0.5
            cold = client.post("/v1/score", json=_lead(993_001, **COLD)).json()
            hot = client.post("/v1/score", json=_lead(993_001, **HOT)).json()
    finally:
        stop(proc)
    change = hot["p_sql"] - cold["p_sql"]
    assert change >= 0.05  # a trend at the default threshold ...
    assert hot["trend"] == ("improving" if change >= 0.5 else "steady")  # ... judged against 0.5 here
