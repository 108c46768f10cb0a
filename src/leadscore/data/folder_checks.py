"""A data folder checked as training reads it: each declared table on its own (rows whose id joins no
lead, unreadable or future times, rows per lead, events after scoring) and the label counts by
stage path, beside ``validate_frame``'s checks of the leads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.accounts import read_account_tables
from leadscore.data.activity import all_logs_found, log_key
from leadscore.data.folders import (
    Loaded,
    declared_table,
    folder_activity,
    with_declared_tables,
)
from leadscore.data.joins import NO_JOIN
from leadscore.data.lifecycle import with_scoring_time
from leadscore.data.paths import leads_path
from leadscore.data.sources import find_table, read_table
from leadscore.data.validate import ValidationReport, label_values, validate_frame
from leadscore.features.rollups import NAT_MS, align_events
from leadscore.features.values import to_epoch_ms
from leadscore.spec import DatasetSpec

TOP_PATHS = 10
TOP_TYPES = 20


def validate_folder(folder: Path, spec: DatasetSpec, now_ms: float | None = None) -> ValidationReport:
    """A data folder checked as training reads it: the leads (with the declared features and labels)
    as ``validate_frame`` does, and each declared table on its own: rows whose id joins no lead,
    unreadable or future times, rows per lead, and the label counts by stage path."""
    leads = with_scoring_time(read_table(leads_path(folder, spec)), spec)
    loaded: Loaded = {}  # each table is read once, for the features and labels and for its checks
    frame, past = with_declared_tables(leads, folder, spec, loaded)
    report = validate_frame(frame, spec, source=str(folder))
    if not spec.id or spec.id not in leads.columns:
        return report
    now = float(now_ms if now_ms is not None else time.time() * 1000)
    lead_ids = pd.Index(leads[spec.id].dropna().unique())
    columns = spec.activity
    if columns is not None and columns.log is None and find_table(folder, spec.table("events")) is not None:
        events, name = folder_activity(folder, spec, loaded)
        report.tables["events"] = _activity_facts(events, name, "events", leads, lead_ids, now, report, spec)
    elif columns is not None and columns.log is not None and (spec.declared or all_logs_found(folder, spec)):
        events, name = folder_activity(folder, spec, loaded, leads)
        for log_name, one in spec.logs.items():
            rows = events.loc[events[columns.log].to_numpy() == log_name]
            key = log_key(spec, log_name)
            source = f"{spec.log_table(log_name)} (log '{log_name}')"
            facts = _activity_facts(rows, source, key, leads, lead_ids, now, report, spec, one.email)
            report.tables[key] = facts
    if spec.stages is not None and find_table(folder, spec.table("stages")) is not None:
        log = spec.stages
        history, name = declared_table(folder, spec, "stages", log.columns(), loaded)
        facts = _log_facts(history, name, log.id, log.time, lead_ids, now, report, "stages")
        facts["paths"] = _stage_paths(history, frame, spec)
        if past:
            facts["already_past"] = past
            report.add(
                "warning",
                "already_past",
                log.stage,
                past,
                f"{past:,} leads were already at {' / '.join(spec.label.stages or [])} when they were "
                "scored: left out of training",
                "stages",
            )
        report.tables["stages"] = facts
    if spec.accounts is not None:
        _account_facts(folder, spec, report)
    return report


def _account_facts(folder: Path, spec: DatasetSpec, report: ValidationReport) -> None:
    """Leads matched to accounts by each method, and the accounts' data faults, counted."""
    tables = read_account_tables(folder, spec, strict=False)
    report.matching = {**tables.matches.counts, **tables.counts}
    acc = spec.accounts
    assert acc is not None
    duplicates = tables.counts["duplicate_account_ids"]
    if duplicates:
        message = f"{duplicates:,} account ids appear twice: their leads match no account"
        report.add(
            "warning", "duplicate_account_ids", acc.id, duplicates, message, tables.sources["accounts"]
        )
    unknown = tables.counts.get("unknown_opportunities", 0)
    if unknown and acc.label is not None and acc.label.opportunities is not None:
        message = f"{unknown:,} opportunities name an account the accounts table does not have: not read"
        column = acc.label.opportunities.id
        report.add("warning", "unknown_account", column, unknown, message, tables.sources["opportunities"])
    ambiguous = tables.matches.counts["ambiguous"]
    if ambiguous:
        message = f"{ambiguous:,} leads share a domain or company name with several accounts: left unmatched"
        report.add("warning", "ambiguous_match", None, ambiguous, message, tables.sources["leads"])


def _activity_facts(
    events: pd.DataFrame,
    name: str,
    kind: str,
    leads: pd.DataFrame,
    lead_ids: pd.Index,
    now: float,
    report: ValidationReport,
    spec: DatasetSpec,
    by_email: str | None = None,
) -> dict[str, Any]:
    """One activity log's facts: unusable rows, rows per lead, its top types, events after scoring."""
    columns = spec.activity
    assert columns is not None
    facts = _log_facts(events, name, columns.id, columns.time, lead_ids, now, report, kind, by_email)
    types = pd.Series(events[columns.type].to_numpy(dtype=object))  # as written (a category: no unused ones)
    facts["types"] = {str(k): int(v) for k, v in types.value_counts().head(TOP_TYPES).items()}
    facts.update(_after_scoring(events, columns.id, columns.time, leads, spec))
    return facts


def _log_facts(
    table: pd.DataFrame,
    name: str,
    id_col: str,
    time_col: str,
    lead_ids: pd.Index,
    now: float,
    report: ValidationReport,
    kind: str,
    by_email: str | None = None,
) -> dict[str, Any]:
    """Rows of one declared table that cannot be used, reported (never silently dropped), and how
    many rows each lead has (``by_email``: the email column a log is joined by)."""
    t = to_epoch_ms(table[time_col])
    bad_time = t == NAT_MS
    pos = lead_ids.get_indexer(table[id_col].to_numpy())
    unknown = pos < 0
    future = ~bad_time & (t > now)
    rows = len(table)
    _report_unknown(report, unknown, id_col, kind, name, by_email)
    if bad_time.any():
        report.add(
            "warning",
            "bad_time",
            time_col,
            int(bad_time.sum()),
            f"{int(bad_time.sum()):,} rows have no readable time: they are not used",
            name,
        )
    if future.any():
        day = np.datetime64(int(now), "ms").astype("datetime64[D]")
        report.add(
            "warning",
            "future_time",
            time_col,
            int(future.sum()),
            f"{int(future.sum()):,} rows are dated after today ({day}): check the export's time zone",
            name,
        )
    per_lead = np.bincount(pos[~unknown], minlength=len(lead_ids)) if len(lead_ids) else np.zeros(0)
    return {
        "file": name,
        "rows": rows,
        "unknown_lead": int(unknown.sum()),
        "bad_time": int(bad_time.sum()),
        "future": int(future.sum()),
        "leads_with_rows": int((per_lead > 0).sum()),
        "leads": len(lead_ids),
        "per_lead": {
            "median": float(np.median(per_lead)) if len(per_lead) else 0.0,
            "p90": float(np.quantile(per_lead, 0.9)) if len(per_lead) else 0.0,
            "max": int(per_lead.max()) if len(per_lead) else 0,
        },
    }


def _report_unknown(
    report: ValidationReport, unknown: np.ndarray, id_col: str, kind: str, name: str, by_email: str | None
) -> None:
    """Rows whose lead is not in the leads table: an error when none joins, else a counted warning
    (a log keyed by email: its emails that match no lead's)."""
    rows = len(unknown)
    if by_email is not None and unknown.any():
        share = f"{int(unknown.sum()):,} of {rows:,} rows ({unknown.mean():.1%})"
        how = "most" if unknown.mean() > 0.5 else "some"
        report.add(
            "warning",
            "unknown_email",
            by_email,
            int(unknown.sum()),
            f"{share} have an email that matches no lead's ({how} of the log): they are not used; "
            f"check spec keys '{kind}.email' and 'email'",
            name,
        )
    elif rows and unknown.all():
        report.add(
            "error",
            "ids_dont_join",
            id_col,
            rows,
            f"{NO_JOIN} '{kind}.id'",
            name,
        )
    elif unknown.any():
        report.add(
            "warning",
            "unknown_lead",
            id_col,
            int(unknown.sum()),
            f"{int(unknown.sum()):,} rows ({unknown.mean():.1%}) name a lead that is not in the leads "
            "table: they are not used",
            name,
        )


def _after_scoring(
    events: pd.DataFrame, id_col: str, time_col: str, leads: pd.DataFrame, spec: DatasetSpec
) -> dict[str, int]:
    """Events dated after their lead's scoring time: expected in an export, never read for features."""
    if not spec.time or spec.time not in leads.columns:
        return {}
    anchors = leads[[spec.id, spec.time]].drop_duplicates(spec.id)
    n, pos, age, ev_t, usable = align_events(
        events, anchors, id_col=str(spec.id), time_col=spec.time, event_id=id_col, event_time=time_col
    )
    known = pd.Index(anchors[spec.id].to_numpy()).get_indexer(events[id_col].to_numpy()) >= 0
    later = int((known & (age < 0) & (ev_t != NAT_MS)).sum())
    return {"read_for_features": int(usable.sum()), "after_scoring": later}


def _stage_paths(history: pd.DataFrame, frame: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, Any]]:
    """The most common stage paths (each lead's stages in time order) with their label counts."""
    assert spec.stages is not None and spec.id
    log = spec.stages
    ordered = history[[log.id, log.time, log.stage]].copy()
    ordered["_t"] = to_epoch_ms(ordered[log.time])
    ordered = ordered.sort_values([log.id, "_t"], kind="stable")
    paths = ordered.groupby(log.id, sort=False)[log.stage].agg(lambda s: " > ".join(map(str, s)))
    lead_path = frame[spec.id].map(paths).fillna("(no stage history)")
    if spec.label.column in frame.columns:
        y, known = label_values(frame, spec)
    else:
        y, known = np.zeros(len(frame), dtype=np.int8), np.zeros(len(frame), dtype=bool)
    table = pd.DataFrame({"path": lead_path.to_numpy(), "sql": y * known, "known": known})
    grouped = table.groupby("path", sort=False).agg(
        leads=("sql", "size"), sql=("sql", "sum"), labelled=("known", "sum")
    )
    top = grouped.sort_values(["leads", "sql"], ascending=False, kind="stable").head(TOP_PATHS)
    return [
        {"path": str(p), "leads": int(r.leads), "labelled": int(r.labelled), "sql": int(r.sql)}
        for p, r in top.iterrows()
    ]
