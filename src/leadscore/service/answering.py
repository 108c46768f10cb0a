"""Checked leads scored together: their answers, their score-log rows and the figures for the metrics.

The single-lead route and every batch (in a scorer process) answer through ``answer_leads``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leadscore.scoring.answer import log_rows, trend_fields
from leadscore.scoring.changes import score_changes
from leadscore.service.alerts import alerts_of
from leadscore.service.leads import CheckedLead
from leadscore.service.loaded import Loaded
from leadscore.store.scores import Previous, now_utc
from leadscore.store.webhooks import Event
from leadscore.store.writer import PackedRows

PreviousLookup = Callable[[list[str]], Mapping[str, Previous]]  # lead keys -> their last logged answers


@dataclass
class Answered:
    """Leads answered: each answer, the log rows (when logged), and the figures for the metrics."""

    answers: list[dict[str, Any]]
    rows: PackedRows | None
    p_sql: np.ndarray
    mql: int
    alerts: list[Event] = field(default_factory=list)  # leads that became MQLs (the score log is on)


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
    lead's previous logged answer and trend, and a log row is made for it; without, they are null."""
    records = [c.record for c in leads]
    bundle = model.bundle
    answers, scored = bundle.answers(
        records, explain=explain, warnings=[c.warnings for c in leads], num_threads=threads
    )
    rows = None
    alerts: list[Event] = []
    if previous is not None:
        rows = PackedRows.from_rows(
            log_rows(
                answers,
                records,
                model_name=bundle.name,
                fields=bundle.fields,
                source="api",
                request_id=request_id,
                shown=bundle.spec.display,
                source_field=bundle.spec.source,
            )
        )
        keys = [logged.lead_id for logged in rows.answers]
        found = previous(keys)
        for answer, key in zip(answers, keys, strict=True):
            answer.update(trend_fields(answer, found.get(key), trend_threshold))
        befores = [p.inputs if (p := found.get(key)) is not None else None for key in keys]
        # the same fields as logged last time (the CRM sent the lead again): nothing to compare
        same = [b is not None and b == logged.inputs for b, logged in zip(befores, rows.answers, strict=True)]
        moved = score_changes(
            bundle,
            records,
            [None if s else b for b, s in zip(befores, same, strict=True)],
            encoded=scored.inputs,
        )
        for answer, changes, unchanged in zip(answers, moved, same, strict=True):
            answer["changes"] = [] if unchanged else changes
        alerts = alerts_of(answers, now_utc())
    else:
        for answer in answers:
            answer.update(trend_fields(answer, None, trend_threshold))
            answer["changes"] = None
    return Answered(answers, rows, np.asarray(scored.p_sql, dtype=float), int(scored.mql.sum()), alerts)
