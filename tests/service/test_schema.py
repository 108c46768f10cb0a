"""Property-based calls generated from the service's own OpenAPI schema: never a 5xx.

Schemathesis builds the requests (Hypothesis strategies per operation); its pytest plugin is not
used because it does not run under pytest 9, so each operation is driven with ``@given`` here.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.helpers import API_KEY, Server

pytestmark = pytest.mark.e2e
DOCUMENTED = {200, 401, 403, 413, 422, 503}
CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_no_generated_request_makes_a_server_error(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server['url']}/openapi.json", headers={"X-API-Key": API_KEY})
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]  # Ok | Err: an Err fails here
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/score",
        "POST /v1/score/batch",
        "GET /v1/model",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
    }
    calls: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=str(server["url"]), headers={"X-API-Key": API_KEY}, timeout=30)
            assert response.status_code < 500, (
                f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
            )
            # a server without an account model answers its accounts route 404, as documented
            allowed = DOCUMENTED | ({404} if case.path == "/v1/accounts/score" else set())
            assert response.status_code in allowed, response.status_code
            # The answer is what the published schema says it is (types, required keys, media type):
            # what a client generated from the schema relies on.
            case.validate_response(response, checks=CONFORMANCE)
            calls.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)

        call()
    # The lead schema is exact (numbers are numbers, or text that is one), so generated leads that
    # follow it are scored; wrong types are covered by tests/service/test_api.py and test_hardening.py.
    assert 200 in calls["POST /v1/score"] and 200 in calls["POST /v1/score/batch"]


def test_every_200_body_is_declared_by_its_model_and_other_methods_are_405(server: Server) -> None:
    import httpx

    doc = httpx.get(f"{server['url']}/openapi.json", headers={"X-API-Key": API_KEY}).json()
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            ok = operation["responses"].get("200", {}).get("content")
            assert ok, (method, path, operation["responses"])
            (media,) = ok
            schema = ok[media]["schema"]
            if path == "/metrics":
                assert media == "text/plain"  # Prometheus' text format
                continue
            assert media == "application/json" and schema != {"type": "string"}, (method, path, schema)
    assert doc["paths"]["/v1/score"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ScoreOut"
    }
    trace = httpx.request("TRACE", f"{server['url']}/healthz")
    assert trace.status_code == 405 and trace.headers["allow"] == "GET, HEAD"
    assert httpx.head(f"{server['url']}/healthz").status_code == 200
    assert (
        httpx.request("DELETE", f"{server['url']}/v1/model", headers={"X-API-Key": API_KEY}).status_code
        == 405
    )
