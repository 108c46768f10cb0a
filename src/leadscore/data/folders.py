"""A data folder's declared tables into feature columns: the activity log rolled up as each lead's
scoring time, by the one engine in ``leadscore.features.rollups``."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from leadscore.data.history import stage_rows
from leadscore.data.joins import NO_JOIN, joined
from leadscore.data.lifecycle import with_scoring_time
from leadscore.data.sources import find_table, read_folder_table, read_table, resolve_leads_path
from leadscore.data.validate import ValidationReport, label_values, validate_frame
from leadscore.errors import UserError
from leadscore.features.rollups import NAT_MS, align_events, rollups_for_spec
from leadscore.features.values import MS_PER_DAY, to_epoch_ms
from leadscore.spec import ANY, DatasetSpec, EventLog


def is_declared_folder(path: str | Path, spec: DatasetSpec) -> bool:
    """A folder of a CRM's own tables, read through the spec (declared engagement or stage labels)."""
    return Path(path).is_dir() and bool(spec.declared or spec.label.stages)


# A folder's declared tables once read, by kind (``events``, ``stages``): the table and its file name.
Loaded = dict[str, tuple[pd.DataFrame, str]]


def with_declared_tables(
    frame: pd.DataFrame,
    folder: Path,
    spec: DatasetSpec,
    loaded: Loaded | None = None,
    *,
    until_ms: float | None = None,
) -> tuple[pd.DataFrame, int]:
    """The leads with what the spec declares over the folder's other tables: engagement from the
    activity log, the label from the status history (and how many leads that left out). Tables
    are read once into ``loaded`` when one is given (a caller that reads them again). ``until_ms``:
    the export day when it is earlier than the tables' end: later stage changes are not read."""
    if spec.declared:
        frame = with_declared_engagement(frame, folder, spec, loaded)
    if spec.label.stages:
        return with_stage_labels(frame, folder, spec, loaded, until_ms=until_ms)
    return frame, 0


def leads_path(folder: Path, spec: DatasetSpec) -> Path:
    """The leads table of a folder (``tables: {leads: ...}`` names its file stem)."""
    stem = spec.table("leads")
    found = find_table(folder, stem)
    if found is None:
        raise UserError(f"{folder}: no '{stem}' table (.csv or .parquet) for spec key 'tables.leads'")
    return found


def with_declared_engagement(
    frame: pd.DataFrame, folder: Path, spec: DatasetSpec, loaded: Loaded | None = None
) -> pd.DataFrame:
    """``frame`` (the leads) with every declared engagement feature computed from the folder's
    activity log as of each lead's scoring time (columns of the same name are replaced)."""
    log = spec.events
    if not isinstance(log, EventLog):
        raise UserError(
            "spec key 'events': declared engagement needs the activity log's columns (events: {id, time, type})"
        )
    if not spec.id or not spec.time:
        raise UserError(
            "spec keys 'id' and 'time': needed to roll up activity as of each lead's scoring time"
        )
    for key, column in (("id", spec.id), ("time", spec.time)):
        if column not in frame.columns:
            raise UserError(f"spec key '{key}': column '{column}' is not in the leads table")
    events, source = _events(folder, spec, log, loaded, frame[spec.id])
    _check_definitions(events, source, spec)
    return engagement_from(frame, events, spec)


def engagement_from(frame: pd.DataFrame, events: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """``frame`` (the leads) with the spec's declared engagement from ``events`` (an activity log already
    read and checked): the columns of a declared name are replaced, the others kept in their order.
    Each lead's features depend on its own events only, so any split of the leads with their events
    (the Spark path's buckets) gives the same rows."""
    assert spec.id and spec.time
    anchors = frame[[spec.id, spec.time]].drop_duplicates(spec.id)
    rollups = rollups_for_spec(events, anchors, spec)
    rollups.insert(0, spec.id, anchors[spec.id].to_numpy())
    frame = frame.drop(columns=[c for c in spec.declared if c in frame.columns])
    return frame.merge(rollups, on=spec.id, how="left")


def _events(
    folder: Path,
    spec: DatasetSpec,
    log: EventLog,
    loaded: Loaded | None = None,
    lead_ids: pd.Series | None = None,
) -> tuple[pd.DataFrame, str]:
    columns = {k: getattr(log, k) for k in ("id", "time", "type")}
    return _declared_table(folder, spec, "events", columns, loaded, lead_ids)


def _declared_table(
    folder: Path,
    spec: DatasetSpec,
    kind: str,
    columns: dict[str, str],
    loaded: Loaded | None = None,
    lead_ids: pd.Series | None = None,
) -> tuple[pd.DataFrame, str]:
    """One of a folder's declared tables (``events``, ``stages``), with the columns its spec key names
    (taken from ``loaded`` when it was read already, and kept there). With the leads' ids, the
    table's ids are put in their form (``7`` and ``"7"`` are one lead), and a table none of whose
    rows joins a lead stops the command in the line ``validate`` gives."""
    if loaded is not None and kind in loaded:
        return loaded[kind]
    stem = spec.table(kind)
    path = find_table(folder, stem)
    if path is None:
        raise UserError(f"{folder}: no '{stem}' table (.csv or .parquet) for spec key 'tables.{kind}'")
    table = read_table(path)
    require_columns(table.columns, path.name, kind, columns)
    if kind == "stages" and spec.stages is not None and spec.stages.where:
        table = stage_rows(table, spec.stages.wanted(), path.name)
    if lead_ids is not None:
        table = joined(table, columns["id"], lead_ids, path.name, kind)
    if loaded is not None:
        loaded[kind] = (table, path.name)
    return table, path.name


def require_columns(present: Iterable[str], source: str, kind: str, columns: dict[str, str]) -> None:
    """Each column a spec key (``<kind>.<key>``) names must be in the table (one line naming the key)."""
    have = set(present)
    for key, column in columns.items():
        if column not in have:
            raise UserError(f"spec key '{kind}.{key}': column '{column}' is not in {source}")


def _check_definitions(events: pd.DataFrame, source: str, spec: DatasetSpec) -> None:
    assert isinstance(spec.events, EventLog)
    present = {str(v).strip().casefold() for v in events[spec.events.type].dropna().unique()}
    check_definitions(events.columns, present, source, spec)


def check_definitions(columns: Iterable[str], present: set[str], source: str, spec: DatasetSpec) -> None:
    """A definition naming a column or an event type the log does not have (``columns``; ``present``:
    its event types, trimmed and case-folded) is one line naming its key."""
    have = set(columns)
    for name, d in spec.declared.items():
        for column in d.where:
            if column not in have:
                raise UserError(f"spec key 'engagement.{name}.where': column '{column}' is not in {source}")
        if d.attribute is not None and d.attribute not in have:
            raise UserError(
                f"spec key 'engagement.{name}.{d.kind}': column '{d.attribute}' is not in {source}"
            )
        for kind_type in d.types:
            if kind_type.strip().casefold() != ANY and kind_type.strip().casefold() not in present:
                raise UserError(
                    f"spec key 'engagement.{name}': event type '{kind_type}' never occurs in {source}"
                )


def with_stage_labels(
    frame: pd.DataFrame,
    folder: Path,
    spec: DatasetSpec,
    loaded: Loaded | None = None,
    *,
    until_ms: float | None = None,
) -> tuple[pd.DataFrame, int]:
    """``frame`` with the label from the folder's status history: SQL when the lead enters one of
    ``label.stages`` after its scoring time and within ``label.within_days``. A lead whose last stage
    at its scoring time was already one of them is left without a label (out of training); how many
    is returned. Backward moves count as the history says: a lead recycled before its scoring time
    and qualified again after it is an SQL."""
    log, rule = spec.stages, spec.label
    assert rule.stages is not None
    if log is None:
        raise UserError(
            "spec key 'stages': labels from stages need the status history's columns (stages: {id, time, stage})"
        )
    if not spec.id or not spec.time:
        raise UserError(
            "spec keys 'id' and 'time': needed to read the status history as of each lead's scoring time"
        )
    history, source = _declared_table(
        folder, spec, "stages", {k: getattr(log, k) for k in ("id", "time", "stage")}, loaded, frame[spec.id]
    )
    stage, wanted = _stages(history, spec)
    if not np.isin(stage, list(wanted)).any():
        raise UserError(f"spec key 'label.stages': none of {', '.join(rule.stages)} occurs in {source}")
    if until_ms is not None:
        history = history.loc[~(to_epoch_ms(history[log.time]) > until_ms)].reset_index(drop=True)
    return labels_from(frame, history, spec)


def _stages(history: pd.DataFrame, spec: DatasetSpec) -> tuple[np.ndarray, set[str]]:
    """The status history's stages folded (trimmed, case-folded), and the folded SQL stages."""
    assert spec.stages is not None and spec.label.stages is not None
    wanted = {s.strip().casefold() for s in spec.label.stages}
    column = history[spec.stages.stage].astype("string").str.strip().str.casefold()
    return column.fillna("").to_numpy(dtype=object), wanted


def labels_from(frame: pd.DataFrame, history: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, int]:
    """``frame`` with its label from ``history`` (a status history already read and checked), and how
    many leads were already past the SQL stages at their scoring time. Each lead's label depends on
    its own history only."""
    stage, wanted = _stages(history, spec)
    label, past = _stage_label(frame, history, stage, wanted, spec)
    out = frame.copy()
    out[spec.label.column] = pd.Series(label, index=frame.index, dtype="Int64")
    return out, past


class _Entries(NamedTuple):
    """A status history's rows against the leads: whose row (``lead``, ``known`` when it is one of
    ``frame``'s), when it was entered, how long after that lead's scoring time, and whether it is an
    SQL stage."""

    lead: np.ndarray
    known: np.ndarray
    entered: np.ndarray
    delta: np.ndarray
    is_sql: np.ndarray

    def in_window(self, spec: DatasetSpec) -> np.ndarray:
        """Entries into an SQL stage after the lead's scoring time and within the label window."""
        window = spec.label.within_days * MS_PER_DAY
        return self.known & self.is_sql & (self.delta >= 0) & (self.delta <= window)


def _entries(
    frame: pd.DataFrame, history: pd.DataFrame, stage: np.ndarray, wanted: set[str], spec: DatasetSpec
) -> _Entries:
    assert spec.stages is not None and spec.id and spec.time
    pos = pd.Index(frame[spec.id].to_numpy()).get_indexer(history[spec.stages.id].to_numpy())
    known = pos >= 0
    lead = np.where(known, pos, 0)
    entered = to_epoch_ms(history[spec.stages.time])
    delta = entered - to_epoch_ms(frame[spec.time])[lead]
    return _Entries(lead, known, entered, delta, np.isin(stage, list(wanted)))


def _stage_label(
    frame: pd.DataFrame, history: pd.DataFrame, stage: np.ndarray, wanted: set[str], spec: DatasetSpec
) -> tuple[np.ndarray, int]:
    e = _entries(frame, history, stage, wanted, spec)
    n = len(frame)
    label = np.zeros(n, dtype=np.int64)
    label[e.lead[e.in_window(spec)]] = 1
    # The state at the scoring time: the latest change strictly before it.
    before = e.known & (e.delta < 0)
    order = np.lexsort((e.entered[before], e.lead[before]))
    rows, sql_then = e.lead[before][order], e.is_sql[before][order]
    last = np.r_[rows[1:] != rows[:-1], True] if len(rows) else np.array([], dtype=bool)
    already = np.zeros(n, dtype=bool)
    already[rows[last]] = sql_then[last]
    out = label.astype(object)
    out[already] = None
    return out, int(already.sum())


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
    if isinstance(spec.events, EventLog) and find_table(folder, spec.table("events")) is not None:
        events, name = _events(folder, spec, spec.events, loaded)
        facts = _log_facts(events, name, spec.events.id, spec.events.time, lead_ids, now, report, "events")
        facts["types"] = {
            str(k): int(v) for k, v in events[spec.events.type].value_counts().head(TOP_TYPES).items()
        }
        facts.update(_after_scoring(events, spec.events.id, spec.events.time, leads, spec))
        report.tables["events"] = facts
    if spec.stages is not None and find_table(folder, spec.table("stages")) is not None:
        log = spec.stages
        history, name = _declared_table(
            folder, spec, "stages", {"id": log.id, "time": log.time, "stage": log.stage}, loaded
        )
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
    return report


def _log_facts(
    table: pd.DataFrame,
    name: str,
    id_col: str,
    time_col: str,
    lead_ids: pd.Index,
    now: float,
    report: ValidationReport,
    kind: str,
) -> dict[str, Any]:
    """Rows of one declared table that cannot be used, reported (never silently dropped), and how
    many rows each lead has."""
    t = to_epoch_ms(table[time_col])
    bad_time = t == NAT_MS
    pos = lead_ids.get_indexer(table[id_col].to_numpy())
    unknown = pos < 0
    future = ~bad_time & (t > now)
    rows = len(table)
    if rows and unknown.all():
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


def read_leads(data: str | Path, spec: DatasetSpec, *, labels: bool = False) -> pd.DataFrame:
    """The leads of a file or a data folder as a model reads them: a folder of declared tables gets
    its declared features (and, with ``labels``, its labels from the status history)."""
    if not is_declared_folder(data, spec):
        return with_scoring_time(read_table(resolve_leads_path(data)), spec)
    folder = Path(data)
    frame = with_scoring_time(read_table(leads_path(folder, spec)), spec)
    if labels:
        return with_declared_tables(frame, folder, spec)[0]
    return with_declared_engagement(frame, folder, spec) if spec.declared else frame


def read_activity(data: str | Path, spec: DatasetSpec) -> pd.DataFrame | None:
    """A folder's activity log with the generator's column names (``lead_id``, ``occurred_at``,
    ``event_type``) whatever the CRM calls them, for timelines; None when there is none."""
    events = read_folder_table(data, spec.table("events"))
    if events is None:
        return None
    log = spec.events
    if isinstance(log, EventLog):
        wanted = {log.id: "lead_id", log.time: "occurred_at", log.type: "event_type"}
        missing = [c for c in wanted if c not in events.columns]
        if missing:
            raise UserError(
                f"spec key 'events': column '{missing[0]}' is not in the '{spec.table('events')}' table of {data}"
            )
        events = events.drop(columns=[c for c in wanted.values() if c in events.columns and c not in wanted])
        events = events.rename(columns=wanted)
    for column in ("lead_id", "occurred_at", "event_type"):
        if column not in events.columns:
            return None
    return events


def sql_times(
    frame: pd.DataFrame, history: pd.DataFrame, spec: DatasetSpec, until_ms: float | None = None
) -> pd.Series:
    """Each lead's first entry into an SQL stage after its scoring time and within the label window
    (epoch ms, by lead id; leads without one are absent): when, not only whether. Stage changes after
    ``until_ms`` (the export's day) are not read."""
    stage, wanted = _stages(history, spec)
    e = _entries(frame, history, stage, wanted, spec)
    hit = e.in_window(spec)
    if until_ms is not None:
        hit &= ~(e.entered > until_ms)
    first = pd.Series(e.entered[hit].astype(np.float64)).groupby(e.lead[hit]).min()
    ids = pd.Index(frame[spec.id].to_numpy())
    return pd.Series(first.to_numpy(), index=ids[first.index.to_numpy()])


def stage_history(folder: Path, spec: DatasetSpec) -> tuple[pd.DataFrame, str]:
    """A folder's status history with the columns its spec key names, and its file's name."""
    assert spec.stages is not None
    log = spec.stages
    return _declared_table(folder, spec, "stages", {"id": log.id, "time": log.time, "stage": log.stage})
