"""What was really served: the store's score log as the monitor's recent period.

Each lead's latest logged answer in the window becomes one row (its logged fields, the score and the
MQL flag the CRM received); sales' decisions in the store give outcomes (accepted = SQL), and a file
of later stages may add more. Figures per model version show what each version actually sent to sales.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.labels import apply_labels
from leadscore.data.sources import read_table, resolve_leads_path
from leadscore.data.validate import label_values
from leadscore.errors import UserError
from leadscore.spec import DatasetSpec
from leadscore.store.db import Store, open_store
from leadscore.store.decisions import load_decisions
from leadscore.store.scores import served_scores

SERVED_P = "_served_p_sql"
SERVED_MQL = "_served_mql"
SERVED_VERSION = "_served_model_version"


def served_frame(
    spec: DatasetSpec, since: datetime, store: str | Path | None = None, outcomes: str | Path | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The leads served since ``since`` (each lead's latest answer) as a lead table with its outcomes,
    and the figures of the served traffic per model version."""
    opened = open_store(store)
    log = served_scores(opened, since)
    if log.empty:
        raise UserError(
            f"{opened.shown}: no scores logged since {since:%Y-%m-%d %H:%M} (the service logs every answer)"
        )
    if not spec.id:
        raise UserError(f"dataset '{spec.name}': monitoring served scores needs the spec's id column")
    answers = len(log)
    lead_rows = log.sort_values(["scored_at", "id"], kind="stable").drop_duplicates("lead_id", keep="last")
    inputs = pd.DataFrame(list(lead_rows["inputs"].map(lambda v: v or {})), index=lead_rows.index)
    frame = inputs.assign(
        **{
            spec.id: lead_rows["lead_id"].to_numpy(),
            SERVED_P: lead_rows["p_sql"].to_numpy(dtype=float),
            SERVED_MQL: lead_rows["mql"].to_numpy(dtype=bool),
            SERVED_VERSION: lead_rows["model_version"].astype(str).to_numpy(),
        }
    )
    if spec.time:
        frame[spec.time] = lead_rows["scored_at"].to_numpy()
    frame = _with_outcomes(frame.reset_index(drop=True), spec, opened, outcomes)
    y, known = label_values(frame, spec)  # what the monitor counts as an outcome, too
    return frame, {
        "store": opened.shown,
        "since": since.isoformat(),
        "answers": answers,
        "leads": len(frame),
        "leads_with_outcome": int(known.sum()),
        "mql_share_sent": float(frame[SERVED_MQL].mean()),
        "by_model_version": _by_version(frame, y, known),
    }


def _with_outcomes(
    frame: pd.DataFrame, spec: DatasetSpec, store: Store, outcomes: str | Path | None
) -> pd.DataFrame:
    """Outcomes from a file of later stages (its label column, joined by id), then sales' decisions."""
    assert spec.id
    frame[spec.label.column] = None
    if outcomes is not None:
        later = read_table(resolve_leads_path(outcomes))
        for column in (spec.id, spec.label.column):
            if column not in later.columns:
                raise UserError(f"{outcomes}: column '{column}' is missing (outcomes are joined by id)")
        first = later.drop_duplicates(spec.id)
        by_id = first.set_index(first[spec.id].astype(str))
        frame[spec.label.column] = frame[spec.id].astype(str).map(by_id[spec.label.column]).astype(object)
    decisions = load_decisions(store)
    if len(decisions) and spec.label.negative:
        frame, _ = apply_labels(frame, spec, decisions)
    return frame


def _by_version(frame: pd.DataFrame, y: np.ndarray, known: np.ndarray) -> list[dict[str, Any]]:
    """Per model version: leads, the MQL share sent, mean P(SQL) and, where known, SQLs against expected."""
    out = []
    for version, idx in frame.groupby(SERVED_VERSION, sort=True).indices.items():
        p, mql = frame[SERVED_P].to_numpy()[idx], frame[SERVED_MQL].to_numpy()[idx]
        k, yy = known[idx], y[idx]
        row: dict[str, Any] = {
            "model_version": str(version),
            "leads": int(len(idx)),
            "mql_share": float(mql.mean()),
            "mean_p_sql": float(p.mean()),
            "with_outcome": int(k.sum()),
            "expected_sql": float(p[k].sum()) if k.any() else None,
            "observed_sql": int(yy[k].sum()) if k.any() else None,
            "mql_sql_rate": float(yy[k & mql].mean()) if (k & mql).any() else None,
        }
        out.append(row)
    return out
