"""End to end against a real uvicorn server over HTTP."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from leadscore.scoring.bundle import ModelBundle
from tests.helpers import API_KEY, GRACEFUL, Server, Trained, free_port, make_leads, start_server, stop

pytestmark = pytest.mark.e2e


def _lead(i: int = 0, seed: int = 95, fault_rate: float = 0.02) -> dict[str, object]:
    row = make_leads(400, seed, fault_rate=fault_rate).iloc[i]
    return json.loads(pd.Series(row).to_json(date_format="iso"))


def test_one_lead_gets_score_flag_grade_reasons_and_versions(client: httpx.Client) -> None:
    r = client.post("/v1/score", json=_lead(3))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "lead_id",
        "p_sql",
        "mql",
        "grade",
        "fit",
        "engagement",
        "reasons",
        "segment",
        "segment_model",
        "respond_within",
        "model_version",
        "cutoff_version",
        "warnings",
        "previous",
        "trend",
        "crossed_cutoff",
        "changes",
        "p_sql_7d",
        "p_sql_30d",
        "expected_days_to_sql",
    }
    assert 0 <= body["p_sql_7d"] <= body["p_sql_30d"] <= 1  # the time head: a folder with stages
    assert 0 <= body["p_sql"] <= 1 and isinstance(body["mql"], bool)
    assert body["grade"][0] in "ABCD" and body["grade"][1] in "1234"
    assert body["respond_within"] in {"1h", "24h"}
    assert body["segment"] is None and body["segment_model"] == "global"  # one model: no segments
    assert body["model_version"].startswith("leadscore-synthetic/")
    assert body["cutoff_version"] == "2026-11-v1"
    reasons = body["reasons"]["positive"] + body["reasons"]["negative"]
    assert reasons and all({"field", "text", "weight", "group"} <= set(x) for x in reasons)
    assert any(
        "ignored unknown fields" in w for w in body["warnings"]
    )  # true_p_sql, email, ... are not model fields
    assert r.headers["x-request-id"]


def test_real_answers_match_the_declared_response_models(client: httpx.Client) -> None:
    """What the service sends is what its OpenAPI document promises: every answer validates against its
    declared model and dumps back to the very same JSON (no field missing, none undeclared)."""
    from pydantic import BaseModel

    from leadscore.service.schemas import BatchScoreOut, LeadErrorOut, ModelOut, ScoreOut

    answers: dict[type[BaseModel], Any] = {
        ScoreOut: client.post("/v1/score", json=_lead(5)).json(),
        BatchScoreOut: client.post(
            "/v1/score/batch", json={"leads": [_lead(1), {"employee_count": "x"}]}
        ).json(),
        ModelOut: client.get("/v1/model").json(),
    }
    for model, body in answers.items():
        assert model.model_validate(body).model_dump(mode="json", exclude_unset=True) == body, model.__name__
    assert isinstance(BatchScoreOut.model_validate(answers[BatchScoreOut]).results[1], LeadErrorOut)
    extra = {**answers[ScoreOut], "undeclared": 1}
    assert (
        ScoreOut.model_validate(extra).model_dump(mode="json", exclude_unset=True) != extra
    )  # the check can fail


def test_service_and_batch_scoring_agree(client: httpx.Client, server: Server) -> None:
    leads = make_leads(400, 95)
    bundle = ModelBundle.load(server["model_path"])
    batch = bundle.score_frame(leads)
    for i in (0, 17, 123, 399):
        r = client.post("/v1/score", json=_lead(i))
        assert r.json()["p_sql"] == round(float(batch.p_sql[i]), 6)
        assert r.json()["grade"] == batch.grade[i]


def test_batch_keeps_order_and_reports_bad_leads_by_index(client: httpx.Client) -> None:
    leads: list[Any] = [_lead(i) for i in range(6)]
    leads[2] = {**leads[2], "employee_count": "many"}
    leads[4] = ["not", "an", "object"]
    r = client.post("/v1/score/batch", json={"leads": leads})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 6
    assert results[2] == {
        "index": 2,
        "error": {
            "detail": "field 'employee_count': expected a number, got 'many'",
            "field": "employee_count",
        },
    }
    assert results[4]["index"] == 4 and "JSON object" in results[4]["error"]["detail"]
    for i in (0, 1, 3, 5):
        assert results[i]["lead_id"] == leads[i]["lead_id"]
        single = client.post("/v1/score", json=leads[i]).json()
        assert single["p_sql"] == results[i]["p_sql"]


def test_batch_over_the_limit_is_refused(client: httpx.Client) -> None:
    r = client.post("/v1/score/batch", json={"leads": [{}] * 51})
    assert r.status_code == 422 and "limit of 50" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"employee_count": "lots"}, "employee_count"),
        ({"employee_count": True}, "employee_count"),
        ({"employee_count": "Infinity"}, "employee_count"),
        ({"scored_at": "yesterday-ish"}, "scored_at"),
        ({"industry": {"nested": 1}}, "industry"),
        ({"web_visits_30d": [1, 2]}, "web_visits_30d"),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    client: httpx.Client, body: dict[str, object], field: str
) -> None:
    r = client.post("/v1/score", json=body)
    assert r.status_code == 422
    assert r.json()["field"] == field and f"'{field}'" in r.json()["detail"]


def test_crm_quirks_are_forgiven(client: httpx.Client) -> None:
    r = client.post(
        "/v1/score",
        json={
            "lead_id": "L-1",
            "employee_count": " 1,200 ",
            "industry": "Select",
            "country": "usa",
            "demo_requests": "1",
            "unknown_thing": 5,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["lead_id"] == "L-1" and body["respond_within"] == "1h"
    assert any("unknown_thing" in w for w in body["warnings"])
    assert any("missing fields" in w and "industry" in w for w in body["warnings"])
    assert not any("did not learn" in w for w in body["warnings"])  # "usa" is a learned country


def test_a_value_the_model_never_learned_is_named_in_the_warnings(client: httpx.Client) -> None:
    """A CRM sending a value outside the model's vocabulary finds out: it is scored as "other"."""
    lead = {"lead_id": "L-2", "industry": "Software", "country": "Narnia", "employee_count": 50}
    body = client.post("/v1/score", json=lead).json()
    said = [w for w in body["warnings"] if "did not learn" in w]
    assert said == [
        "values the model did not learn, scored as other (rare or unseen in training): country='Narnia'"
    ]
    again = client.post("/v1/score", json={**lead, "country": "USA"}).json()  # learned (any case)
    assert not any("did not learn" in w for w in again["warnings"])


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b"42"])
def test_malformed_bodies_are_4xx_not_5xx(client: httpx.Client, content: bytes) -> None:
    r = client.post("/v1/score", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_oversized_body_is_413(client: httpx.Client) -> None:
    r = client.post("/v1/score", content=b'{"x": "' + b"a" * 250_000 + b'"}')
    assert r.status_code == 413


@pytest.mark.parametrize("path", ["/v1/score", "/v1/model", "/metrics", "/openapi.json"])
def test_no_key_or_a_wrong_key_is_401(server: Server, path: str) -> None:
    url = f"{server['url']}{path}"
    method = httpx.post if path == "/v1/score" else httpx.get
    assert method(url).status_code == 401
    assert method(url, headers={"X-API-Key": "wrong"}).status_code == 401
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    ok = httpx.post(url, headers=bearer, json={}) if path == "/v1/score" else httpx.get(url, headers=bearer)
    assert ok.status_code == 200


def test_health_needs_no_key_and_readiness_names_the_model(server: Server) -> None:
    assert httpx.get(f"{server['url']}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server['url']}/readyz").json()
    assert ready["status"] == "ready" and ready["model_version"].startswith("leadscore-synthetic/")


def test_model_endpoint_describes_fields_metrics_and_contract(client: httpx.Client, trained: Trained) -> None:
    body = client.get("/v1/model").json()
    review_by = trained["review_by"].isoformat()
    assert body["cutoff"]["contract"]["review_by"] == review_by and body["cutoff_overdue"] is False
    assert body["threshold"] == pytest.approx(trained["payload"]["cutoff"]["threshold"], abs=1e-6)
    assert body["metrics"]["roc_auc"] == pytest.approx(trained["payload"]["metrics"]["roc_auc"], abs=1e-9)
    names = {f["name"]: f for f in body["fields"]}
    assert names["employee_count"]["type"] == "number" and names["employee_count"]["range"] == [1, 3000000]
    assert names["industry"]["type"] == "category" and "Software" in names["industry"]["categories"]
    assert "call_duration_sec" in body["excluded_columns"]
    # the shipped model learned from every labelled lead; its promise was measured on their OOF scores
    assert body["learned_from"] == trained["payload"]["learned_from"] and body["learned_from"]["finalized"]
    assert body["cutoff"]["measured_on"] == trained["payload"]["cutoff"]["measured_on"]


def _samples(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``, by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def test_metrics_count_requests_scores_and_errors(client: httpx.Client) -> None:
    before = _samples(client)
    answer = client.post("/v1/score", json=_lead(5)).json()
    assert client.post("/v1/score", json={"employee_count": "x"}).status_code == 422
    after = _samples(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    deadline = time.monotonic() + 10
    while (
        grew("leadscore_requests_total", path="/v1/score", status="422") < 1 and time.monotonic() < deadline
    ):
        time.sleep(0.05)  # a request is counted once its answer has gone out: wait for the second
        after = _samples(client)

    assert grew("leadscore_requests_total", path="/v1/score", status="200") == 1
    assert grew("leadscore_requests_total", path="/v1/score", status="422") == 1
    assert grew("leadscore_request_latency_seconds_count", path="/v1/score") == 2
    assert grew("leadscore_errors_total", kind="invalid_lead") == 1
    assert grew("leadscore_leads_scored_total") == 1
    assert grew("leadscore_leads_mql_total") == int(answer["mql"])
    assert grew("leadscore_p_sql_count") == 1
    edges = [dict(labels)["le"] for name, labels in after if name == "leadscore_p_sql_bucket"]
    assert len(edges) > 5
    for le in edges:  # the answer falls in every bucket from its own up, in none below
        assert grew("leadscore_p_sql_bucket", le=le) == int(answer["p_sql"] <= float(le)), le


def test_logs_are_json_without_lead_data(server: Server, client: httpx.Client) -> None:
    sent = client.post(
        "/v1/score", json={"lead_id": "secret-lead-42", "email": "someone@example.com", "employee_count": 10}
    )
    rid = sent.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while True:  # the request's line is written once the answer has gone out: wait for it
        text = Path(str(server["log"])).read_text()
        lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
        mine = [x for x in lines if x["msg"] == "request" and x.get("request_id") == rid]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(mine) == 1, f"no request line for {rid}"
    line = mine[0]
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/score", sent.status_code)
    assert line["latency_ms"] > 0 and line["model_version"].startswith("leadscore-synthetic/")
    assert "secret-lead-42" not in text and "someone@example.com" not in text


def test_bounded_load_has_no_failed_request(server: Server) -> None:
    """Ten connections at once, on a real server: no request fails, and each lead's answer is the
    one it gets when sent alone (the requests of one loop turn are answered together)."""
    leads = [_lead(i, fault_rate=0.0) for i in range(50)]
    same = ("lead_id", "p_sql", "mql", "grade", "fit", "engagement", "reasons", "p_sql_7d", "model_version")
    with httpx.Client(base_url=str(server["url"]), headers={"X-API-Key": API_KEY}, timeout=10) as c:
        alone = [{k: c.post("/v1/score", json=x).json()[k] for k in same} for x in leads]

    def worker(k: int) -> int:
        failed = 0
        with httpx.Client(base_url=str(server["url"]), headers={"X-API-Key": API_KEY}, timeout=10) as c:
            for j in range(60):
                i = (k * 7 + j) % len(leads)
                r = c.post("/v1/score", json=leads[i])
                failed += r.status_code != 200 or {key: r.json()[key] for key in same} != alone[i]
        return failed

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        assert sum(pool.map(worker, range(10))) == 0


def test_refuses_to_start_without_keys_or_with_a_broken_model(trained: Trained, tmp_path: Path) -> None:
    env = {**trained["env"], "LEADSCORE_API_KEYS": "", "LEADSCORE_API_KEY_FILE": ""}
    for model, extra, needle in [
        (trained["model_path"], (), "no API key configured"),
        (tmp_path / "missing", ("--insecure-dev",), "model not found"),
    ]:
        proc = start_server(model, env, free_port(), *extra)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2
        assert needle in err.decode() and "Traceback" not in err.decode()
    broken = tmp_path / "broken"
    ModelBundle.load(trained["model_path"]).save(broken)
    (broken / "bundle.json").write_text("{ half written")
    proc = start_server(broken, {**env, "LEADSCORE_API_KEYS": API_KEY}, free_port())
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "damaged" in err.decode()


def test_key_file_holds_hashes(trained: Trained, tmp_path: Path) -> None:
    line = subprocess.run(
        [sys.executable, "-m", "leadscore", "hash-key", "s3cret-key-for-the-crm"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    keyfile = tmp_path / "keys.txt"
    keyfile.write_text(f"# CRM key\n{line}")
    assert "s3cret-key-for-the-crm" not in keyfile.read_text()
    port = free_port()
    from tests.helpers import wait_ready

    proc = start_server(
        trained["model_path"],
        {**trained["env"], "LEADSCORE_API_KEY_FILE": str(keyfile), "LEADSCORE_API_KEYS": ""},
        port,
        log=tmp_path / "log",
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/v1/model", headers={"X-API-Key": "s3cret-key-for-the-crm"}
            ).status_code
            == 200
        )
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/v1/model", headers={"X-API-Key": "s3cret-key-for-the-crm-2"}
            ).status_code
            == 401
        )
    finally:
        code = stop(proc)
    assert code in GRACEFUL


def test_an_overdue_contract_is_reported_by_the_service(trained: Trained, tmp_path: Path) -> None:
    from tests.helpers import wait_ready

    overdue = tmp_path / "overdue"
    bundle = ModelBundle.load(trained["model_path"])
    contract = bundle.meta.cutoff.contract
    contract.agreed_on, contract.review_by = date(2025, 3, 1), date(2025, 6, 30)  # the review was missed
    bundle.save(overdue)
    port = free_port()
    proc = start_server(
        overdue, {**trained["env"], "LEADSCORE_API_KEYS": API_KEY}, port, log=tmp_path / "log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
            model = c.get("/v1/model").json()
            scored = c.post("/v1/score", json=_lead(3)).json()
    finally:
        stop(proc)
    message = "cutoff contract 2026-11-v1 was due for review on 2025-06-30"
    assert model["cutoff_overdue"] is True and message in model["warnings"]
    assert message in scored["warnings"]
