"""Checked leads scored together: their answers, their score-log rows and the figures for the metrics.

The single-lead route and every batch (in a scorer process) answer through ``answer_leads``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from leadscore.features.values import lead_key
from leadscore.scoring.answer import log_inputs, log_rows, trend_fields
from leadscore.scoring.changes import score_changes
from leadscore.service.alerts import alerts_of
from leadscore.service.leads import CheckedLead
from leadscore.service.loaded import Loaded
from leadscore.store.scores import Previous, now_utc
from leadscore.store.webhooks import Event
from leadscore.store.writer import PackedRows

PreviousLookup = Callable[[list[str]], Mapping[str, Previous]]  # lead keys -> their last logged answers


@dataclass(frozen=True)
class LogParts:
    """What an answer's score-log row is made of beyond the answer itself, kept so that the row can
    be made after the answer is sent (the one-lead path) or at once (a batch scorer)."""

    records: list[dict[str, Any]]
    inputs: list[str]  # each record's model fields as logged (JSON text), made before answering
    model_name: str
    fields: tuple[str, ...]
    request_id: str | None
    scored_at: datetime
    shown: tuple[str, ...]
    source_field: str | None


@dataclass
class Answered:
    """Leads answered: each answer, what their log rows are made of (when logged), and the figures for the metrics."""

    answers: list[dict[str, Any]]
    logged: LogParts | None
    p_sql: np.ndarray
    mql: int
    alerts: list[Event] = field(default_factory=list)  # leads that became MQLs (the score log is on)

    def split(self, request_ids: list[str | None]) -> list[Answered]:
        """One ``Answered`` per lead (leads answered together, each for a request of its own, with
        its request id in its log row)."""
        out = []
        for i, answer in enumerate(self.answers):
            parts = None
            alerts: list[Event] = []
            if self.logged is not None:
                logged = self.logged
                parts = replace(
                    logged, records=[logged.records[i]], inputs=[logged.inputs[i]], request_id=request_ids[i]
                )
                alerts = alerts_of([answer], logged.scored_at)
            out.append(Answered([answer], parts, self.p_sql[i : i + 1], int(bool(answer["mql"])), alerts))
        return out

    def log_rows(self) -> PackedRows | None:
        """The answers' score-log rows, packed for the writer (None: the score log is off)."""
        parts = self.logged
        if parts is None:
            return None
        return PackedRows.from_rows(
            log_rows(
                self.answers,
                parts.records,
                model_name=parts.model_name,
                fields=parts.fields,
                source="api",
                request_id=parts.request_id,
                scored_at=parts.scored_at,
                shown=parts.shown,
                source_field=parts.source_field,
                inputs=parts.inputs,
            )
        )


def answer_leads(
    model: Loaded,
    leads: list[CheckedLead],
    *,
    explain: int,
    threads: int,
    trend_threshold: float,
    previous: PreviousLookup | None,
    request_id: str | None = None,
) -> Answered:
    """Checked leads scored together. With ``previous`` (the score log is on) each answer gains the
    lead's previous logged answer, trend and changes, and what its log row is made of (the row
    itself is made by ``Answered.log_rows``); without, they are null."""
    records = [c.record for c in leads]
    bundle = model.bundle
    answers, scored = bundle.answers(
        records, explain=explain, warnings=[c.warnings for c in leads], num_threads=threads
    )
    p_sql, mql = np.asarray(scored.p_sql, dtype=float), int(scored.mql.sum())
    if previous is None:
        for answer in answers:
            answer.update(trend_fields(answer, None, trend_threshold))
            answer["changes"] = None
        return Answered(answers, None, p_sql, mql)
    now = now_utc()
    inputs = log_inputs(records, bundle.fields)
    keys = [lead_key(answer.get("lead_id")) for answer in answers]
    found = previous(keys)
    for answer, key in zip(answers, keys, strict=True):
        answer.update(trend_fields(answer, found.get(key), trend_threshold))
    befores = [p.inputs if (p := found.get(key)) is not None else None for key in keys]
    # the same fields as logged last time (the CRM sent the lead again): nothing to compare
    same = [b is not None and b == logged for b, logged in zip(befores, inputs, strict=True)]
    moved = score_changes(
        bundle, records, [None if s else b for b, s in zip(befores, same, strict=True)], encoded=scored.inputs
    )
    for answer, changes, unchanged in zip(answers, moved, same, strict=True):
        answer["changes"] = [] if unchanged else changes
    parts = LogParts(
        records,
        inputs,
        str(bundle.name),
        tuple(bundle.fields),
        request_id,
        now,
        tuple(bundle.spec.display),
        bundle.spec.source,
    )
    return Answered(answers, parts, p_sql, mql, alerts_of(answers, now))
