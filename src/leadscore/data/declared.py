"""A data folder's declared tables into feature columns: the activity log rolled up as each lead's
scoring time, by the one engine in ``leadscore.features.declared``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leadscore.config import ANY, DatasetSpec, EventLog
from leadscore.data.sources import find_table, read_table
from leadscore.errors import UserError
from leadscore.features.declared import declared_rollups


def leads_path(folder: Path, spec: DatasetSpec) -> Path:
    """The leads table of a folder (``tables: {leads: ...}`` names its file stem)."""
    stem = spec.table("leads")
    found = find_table(folder, stem)
    if found is None:
        raise UserError(f"{folder}: no '{stem}' table (.csv or .parquet) for spec key 'tables.leads'")
    return found


def with_declared_engagement(frame: pd.DataFrame, folder: Path, spec: DatasetSpec) -> pd.DataFrame:
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
    events, source = _events(folder, spec, log)
    _check_definitions(events, source, spec)
    anchors = frame[[spec.id, spec.time]].drop_duplicates(spec.id)
    rollups = declared_rollups(
        events,
        anchors,
        spec.declared,
        id_col=spec.id,
        time_col=spec.time,
        event_id=log.id,
        event_time=log.time,
        event_type=log.type,
    )
    rollups.insert(0, spec.id, anchors[spec.id].to_numpy())
    frame = frame.drop(columns=[c for c in spec.declared if c in frame.columns])
    return frame.merge(rollups, on=spec.id, how="left")


def _events(folder: Path, spec: DatasetSpec, log: EventLog) -> tuple[pd.DataFrame, str]:
    stem = spec.table("events")
    path = find_table(folder, stem)
    if path is None:
        raise UserError(f"{folder}: no '{stem}' table (.csv or .parquet) for spec key 'tables.events'")
    events = read_table(path)
    for key in ("id", "time", "type"):
        column = getattr(log, key)
        if column not in events.columns:
            raise UserError(f"spec key 'events.{key}': column '{column}' is not in {path.name}")
    return events, path.name


def _check_definitions(events: pd.DataFrame, source: str, spec: DatasetSpec) -> None:
    """A definition naming a column or an event type the log does not have is one line naming its key."""
    assert isinstance(spec.events, EventLog)
    present = {str(v).strip().casefold() for v in events[spec.events.type].dropna().unique()}
    for name, d in spec.declared.items():
        for column in d.where:
            if column not in events.columns:
                raise UserError(f"spec key 'engagement.{name}.where': column '{column}' is not in {source}")
        if d.attribute is not None and d.attribute not in events.columns:
            raise UserError(
                f"spec key 'engagement.{name}.{d.kind}': column '{d.attribute}' is not in {source}"
            )
        for kind_type in d.types:
            if kind_type.strip().casefold() != ANY and kind_type.strip().casefold() not in present:
                raise UserError(
                    f"spec key 'engagement.{name}': event type '{kind_type}' never occurs in {source}"
                )
