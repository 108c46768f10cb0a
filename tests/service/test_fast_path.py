"""The request gate's fast path for ``POST /v1/score``: the same status, headers and bytes as the
FastAPI route it skips, for answers and for every kind of refusal; anything but a plain query is
left to FastAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI

from leadscore.config import Settings
from leadscore.service import gate
from leadscore.service.app import create_app
from leadscore.service.one_lead import plain_explain
from tests.helpers import Trained, make_leads, run_async


@pytest.fixture(scope="module")
def app(trained: Trained) -> Iterator[FastAPI]:
    settings = Settings(log_scores=False, warm_scorers=False, webhooks="")
    yield create_app(str(trained["model_path"]), insecure=True, settings=settings)


@pytest.fixture(scope="module")
def lead() -> dict[str, Any]:
    row = make_leads(50, 95, fault_rate=0.0).iloc[3]
    return dict(json.loads(row.to_json(date_format="iso")))


def _post(app: FastAPI, query: str, content: bytes, method: str = "POST") -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(
                method, f"/v1/score{query}", content=content, headers={"x-request-id": "same-id"}
            )

    return run_async(call)


def _both(app: FastAPI, monkeypatch: pytest.MonkeyPatch, query: str, content: bytes, method: str = "POST"):
    """The response with the fast path and without it, and how often FastAPI ran an endpoint for each."""
    calls = {"n": 0}
    real = fastapi.routing.run_endpoint_function

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "run_endpoint_function", counting)
    fast = _post(app, query, content, method)
    fast_calls = calls["n"]
    monkeypatch.setattr(gate, "FAST_SCORE", False)
    slow = _post(app, query, content, method)
    monkeypatch.setattr(gate, "FAST_SCORE", True)
    return fast, slow, fast_calls, calls["n"] - fast_calls


def _same(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code
    assert fast.content == slow.content
    assert fast.headers.multi_items() == slow.headers.multi_items()


@pytest.mark.parametrize("query", ["", "?explain=0", "?explain=3", "?explain=10"])
def test_a_plain_request_is_answered_by_the_gate_with_the_routes_bytes(
    app: FastAPI, lead: dict[str, Any], monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    fast, slow, fast_endpoints, slow_endpoints = _both(app, monkeypatch, query, json.dumps(lead).encode())
    assert fast.status_code == 200 and "p_sql" in fast.json()
    _same(fast, slow)
    assert (fast_endpoints, slow_endpoints) == (0, 1)  # the fast path skipped FastAPI's route


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[1, 2]", b'{"scored_at": "not a date"}', b'"a string"'],
)
def test_refusals_are_the_same_from_the_gate(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    fast, slow, fast_endpoints, _ = _both(app, monkeypatch, "", content)
    assert 400 <= fast.status_code < 500
    _same(fast, slow)
    assert fast_endpoints == 0


@pytest.mark.parametrize(
    "query", ["?explain=11", "?explain=-1", "?explain=x", "?explain=2&explain=3", "?other=1"]
)
def test_any_other_query_is_left_to_fastapi(
    app: FastAPI, lead: dict[str, Any], monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    fast, slow, fast_endpoints, _ = _both(app, monkeypatch, query, json.dumps(lead).encode())
    _same(fast, slow)
    assert fast_endpoints == (1 if fast.status_code == 200 else 0)  # FastAPI's own checks answered


def test_other_methods_are_left_to_fastapi(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow, _, _ = _both(app, monkeypatch, "", b"", method="GET")
    assert fast.status_code == 405
    _same(fast, slow)


def test_plain_explain_reads_only_a_single_valid_explain() -> None:
    assert plain_explain(b"") == 5
    assert [plain_explain(f"explain={n}".encode()) for n in (0, 7, 10)] == [0, 7, 10]
    for query in (b"explain=11", b"explain=", b"explain=100", b"explain=1&x=2", b"x=1", b"explain=+1"):
        assert plain_explain(query) is None
