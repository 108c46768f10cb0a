"""A batch request's body: parsed, each lead checked (a bad one reported by its index), the rest
answered, and the results as one JSON array (a part of the leads, when several scorers share it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from leadscore.service.answering import PreviousLookup, answer_leads
from leadscore.service.leads import CheckedLead, LeadError
from leadscore.service.loaded import Loaded
from leadscore.store.webhooks import Event
from leadscore.store.writer import PackedRows

BATCH_THREADS = 2  # TreeSHAP of a batch on two threads (one worker per core serves single leads)


class Refused(Exception):
    """A batch the service refuses as a whole (an HTTP status and its detail)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


def parse_body(body: bytes) -> Any:
    """The request body as JSON, or a 422 saying why not."""
    if not body:
        raise Refused(422, "empty body: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(422, f"body is not valid JSON ({exc.msg} at position {exc.pos})") from None


def batch_leads(parsed: Any, max_batch: int) -> list[Any]:
    leads = parsed.get("leads") if isinstance(parsed, dict) else None
    if not isinstance(leads, list):
        raise Refused(422, "field 'leads': expected a JSON array of leads")
    if len(leads) > max_batch:
        raise Refused(422, f"field 'leads': {len(leads)} leads is over the limit of {max_batch} per batch")
    return leads


@dataclass
class Batch:
    """A scored batch (or part of one): the results as a JSON array, the log rows (packed, one part
    per scorer), and the figures for the metrics."""

    results: bytes
    rows: list[PackedRows] | None
    leads: int
    mql: int
    invalid: int
    p_sql: np.ndarray
    alerts: list[Event] = field(default_factory=list)  # leads that became MQLs, for the webhooks

    def response(self) -> bytes:
        """The response body: ``{"results": [...]}``."""
        return b'{"results":' + self.results + b"}"


def join_parts(parts: list[Batch]) -> Batch:
    """The parts of one batch, scored by several scorers, as one (in the leads' order)."""
    if len(parts) == 1:
        return parts[0]
    inner = [p.results[1:-1] for p in parts if p.results != b"[]"]
    rows = [r for p in parts for r in (p.rows or [])]  # each scorer's packed rows, in order
    return Batch(
        results=b"[" + b",".join(inner) + b"]",
        rows=rows if any(p.rows is not None for p in parts) else None,
        leads=sum(p.leads for p in parts),
        mql=sum(p.mql for p in parts),
        invalid=sum(p.invalid for p in parts),
        p_sql=np.concatenate([p.p_sql for p in parts]),
        alerts=[a for p in parts for a in p.alerts],
    )


def score_batch_body(
    model: Loaded,
    body: bytes,
    *,
    explain: int,
    max_batch: int,
    trend_threshold: float,
    previous: PreviousLookup | None,
    request_id: str | None = None,
    threads: int = BATCH_THREADS,
    part: tuple[int, int] = (0, 1),
) -> Batch:
    """A batch body parsed, each lead checked (a bad one reported by its index) and the rest scored;
    ``previous``: finds the leads' last logged answers (None: the score log is off). ``part`` (k, m):
    only the k-th of m equal slices of the leads (indexes stay the whole batch's)."""
    leads = batch_leads(parse_body(body), max_batch)
    k, m = part
    start, stop = len(leads) * k // m, len(leads) * (k + 1) // m
    results: list[dict[str, Any] | None] = [None] * (stop - start)
    good: list[tuple[int, CheckedLead]] = []
    for i in range(start, stop):
        try:
            good.append((i - start, model.checker.check(leads[i])))
        except LeadError as exc:
            results[i - start] = {"index": i, "error": {"detail": str(exc), "field": exc.field}}
    rows = None
    p_sql = np.empty(0)
    mql = 0
    alerts: list[Event] = []
    if good:
        done = answer_leads(
            model,
            [c for _, c in good],
            explain=explain,
            threads=threads,
            trend_threshold=trend_threshold,
            previous=previous,
            request_id=request_id,
        )
        for (i, _), answer in zip(good, done.answers, strict=True):
            results[i] = answer
        packed = done.log_rows()
        rows = None if packed is None else [packed]
        p_sql, mql, alerts = done.p_sql, done.mql, done.alerts
    elif previous is not None:
        rows = []
    return Batch(
        results=orjson.dumps(results, option=orjson.OPT_SERIALIZE_NUMPY),
        rows=rows,
        leads=len(good),
        mql=mql,
        invalid=len(results) - len(good),
        p_sql=p_sql,
        alerts=alerts,
    )
