"""Prometheus metrics and structured JSON logs (no lead data in either)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = tuple(round(x / 20, 2) for x in range(1, 21))


class Metrics:
    """The service's metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "leadscore_requests", "HTTP requests", ["path", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "leadscore_request_latency_seconds",
            "Server-side request latency",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Histogram(
            "leadscore_p_sql",
            "Calibrated P(SQL) of scored leads",
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.leads = Counter("leadscore_leads_scored", "Leads scored", registry=self.registry)
        self.mql = Counter(
            "leadscore_leads_mql",
            "Leads scored as MQL (MQL rate = this / leads scored)",
            registry=self.registry,
        )
        self.errors = Counter("leadscore_errors", "Errors by kind", ["kind"], registry=self.registry)
        self.reloads = Counter(
            "leadscore_model_reloads", "Models swapped in by reload", registry=self.registry
        )
        self.log_written = Gauge(
            "leadscore_score_log_written", "Answers written to the score log", registry=self.registry
        )
        self.log_dropped = Gauge(
            "leadscore_score_log_dropped",
            "Answers not logged (the database was down or the queue full); scoring went on",
            registry=self.registry,
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload, default=str)


def access_logger() -> logging.Logger:
    """A logger writing one JSON object per line to stderr (set up on first use, not at import).

    Python warnings (a library's deprecation notice, say) go through it too, so a multi-line warning
    is one JSON line like every other event.
    """
    log = logging.getLogger("leadscore.access")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        logging.captureWarnings(True)
        warnings_log = logging.getLogger("py.warnings")
        warnings_log.handlers = [handler]
        warnings_log.propagate = False
    return log


def uvicorn_log_config(level: str = "warning") -> dict[str, Any]:
    """uvicorn's own messages (start-up, worker supervision) as JSON lines too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "leadscore.service.telemetry.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }
