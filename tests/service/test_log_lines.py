"""The service's log lines: one JSON object each, whatever the fields hold."""

from __future__ import annotations

import json
import logging
import re

from leadscore.service.telemetry import JsonFormatter


def _line(created: float, **fields: object) -> dict[str, object]:
    record = logging.LogRecord("leadscore.access", logging.INFO, "gate.py", 1, "request", None, None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    record.fields = fields
    text = JsonFormatter().format(record)
    assert "\n" not in text
    loaded: dict[str, object] = json.loads(text)
    return loaded


def test_a_line_has_its_time_level_message_and_fields() -> None:
    line = _line(1_800_000_000.25, request_id="r-1", status=200, latency_ms=0.512)
    assert line == {
        "ts": "2027-01-15T08:00:00.250Z",
        "level": "info",
        "msg": "request",
        "request_id": "r-1",
        "status": 200,
        "latency_ms": 0.512,
    }


def test_a_line_keeps_the_spacing_that_scripts_grep_for() -> None:
    """Operators' filters (and bench_service.py) look for ``"path": "/v1/score"`` as text."""
    record = logging.LogRecord("leadscore.access", logging.INFO, "gate.py", 1, "request", None, None)
    record.fields = {"path": "/v1/score", "status": 200}
    text = JsonFormatter().format(record)
    assert '"path": "/v1/score"' in text and '"status": 200' in text


def test_the_second_is_not_reused_across_seconds() -> None:
    formatter = JsonFormatter()
    stamps = []
    for created in (1_800_000_000.999, 1_800_000_001.001, 1_800_000_000.5):
        record = logging.LogRecord("x", logging.INFO, "p", 1, "m", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        stamps.append(json.loads(formatter.format(record))["ts"])
    assert stamps == ["2027-01-15T08:00:00.999Z", "2027-01-15T08:00:01.000Z", "2027-01-15T08:00:00.500Z"]


def test_odd_values_still_make_one_json_line() -> None:
    line = _line(1_800_000_000.0, huge=2**70, nan=float("nan"), obj=object(), nested={"a": [1, None]})
    assert line["huge"] == 2**70
    assert line["nan"] is None or line["nan"] != line["nan"]
    assert isinstance(line["obj"], str) and re.match(r"<object object at", line["obj"])
    assert line["nested"] == {"a": [1, None]}
