"""Prometheus metrics and structured JSON logs (no lead data in either)."""

from __future__ import annotations

import bisect
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = tuple(round(x / 20, 2) for x in range(1, 21))
GROUP_BUCKETS = (1, 2, 3, 4, 6, 8, 16, 32, 64)


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
        self.scores = ScoreHistogram(
            "leadscore_p_sql", "Calibrated P(SQL) of scored leads", SCORE_BUCKETS, self.registry
        )
        self.leads = Counter("leadscore_leads_scored", "Leads scored", registry=self.registry)
        self.groups = Histogram(
            "leadscore_one_lead_group_size",
            "One-lead requests answered together (per turn of the event loop)",
            buckets=GROUP_BUCKETS,
            registry=self.registry,
        )
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

    def count_answers(self, leads: int, mql: int, p_sql: Any, invalid: int = 0) -> None:
        """The scoring figures of answered leads (one lead or a batch)."""
        self.leads.inc(leads)
        self.mql.inc(mql)
        self.scores.observe_many(p_sql)
        if invalid:
            self.errors.labels(kind="invalid_lead").inc(invalid)


class ScoreHistogram(Collector):
    """A Prometheus histogram observed a batch at a time (one numpy pass for 1,000 scores instead of
    1,000 ``observe`` calls holding the serving process's interpreter)."""

    def __init__(
        self, name: str, documentation: str, buckets: tuple[float, ...], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.array(buckets, dtype=float)
        self._bounds = self.bounds.tolist()
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        if values.shape == (1,):  # one lead (the hottest call): no array passes for one value
            value = float(values[0])
            if value == value:  # not NaN
                at = bisect.bisect_left(self._bounds, value)  # searchsorted's side="left" below
                with self._lock:
                    self._counts[at] += 1
                    self._sum += value
            return
        values = values[~np.isnan(values)]
        if not len(values):
            return
        # a value on a bound belongs to that bucket (le): the first bound >= value
        counts = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        labels = [_go_float(float(b)) for b in self.bounds] + ["+Inf"]
        yield HistogramMetricFamily(
            self.name, self.documentation, buckets=list(zip(labels, cumulative, strict=True)), sum_value=total
        )


def _go_float(value: float) -> str:
    """A bucket bound written as prometheus_client writes it (so both histograms read the same)."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]  # prometheus_client has no annotation


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
