"""A data folder's declared tables into feature columns: the activity log rolled up as each lead's
scoring time, by the one engine in ``leadscore.features.rollups``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from leadscore.data.account_scope import with_account_scope
from leadscore.data.activity import all_logs_found, require_columns, stacked_logs
from leadscore.data.history import folded_stages, stage_rows
from leadscore.data.joins import joined
from leadscore.data.lifecycle import with_scoring_time
from leadscore.data.moments import (
    MOMENT_OF,
    latest_moment,
    leads_at_moments,
    moment_table,
    table_at_moments,
)
from leadscore.data.paths import leads_path
from leadscore.data.sources import (
    find_table,
    parquet_parts,
    read_folder_table,
    read_some_columns,
    read_table,
    resolve_leads_path,
)
from leadscore.errors import UserError
from leadscore.features.rollups import rollups_for_spec
from leadscore.features.values import MS_PER_DAY, to_epoch_ms
from leadscore.spec import ANY, DatasetSpec, read_columns


def is_declared_folder(path: str | Path, spec: DatasetSpec) -> bool:
    """A folder of a CRM's own tables, read through the spec (declared engagement, stage labels or
    accounts); a folder of Parquet parts without the leads table is one table (what ``features``
    or Spark writes), not one."""
    folder = Path(path)
    if not folder.is_dir() or not (spec.declared or spec.label.stages or spec.accounts):
        return False
    return find_table(folder, spec.table("leads")) is not None or not parquet_parts(folder)


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
    the export day when it is earlier than the tables' end: later stage changes are not read. With
    ``moments``, one row per scoring moment (``data/moments.py``)."""
    if spec.moments is not None:
        frame, loaded = _at_moments(frame, folder, spec, loaded)
    if spec.definitions:
        frame = with_declared_engagement(frame, folder, spec, loaded)
    if spec.label.stages:
        return with_stage_labels(frame, folder, spec, loaded, until_ms=until_ms)
    return frame, 0


def _at_moments(
    frame: pd.DataFrame, folder: Path, spec: DatasetSpec, loaded: Loaded | None
) -> tuple[pd.DataFrame, Loaded]:
    """The leads at each of their moments, and the declared tables copied for each moment (the
    tables as read stay in ``loaded``, for the caller's own checks)."""
    raw: Loaded = loaded if loaded is not None else {}
    history, name = _history(folder, spec, raw, frame)
    moments = moment_table(frame, history, spec)
    if moments.empty:
        assert spec.moments is not None
        named = ", ".join(spec.moments.stages)
        raise UserError(f"spec key 'moments.stages': no lead of the leads table enters {named} in {name}")
    at = leads_at_moments(frame, moments, spec)
    private: Loaded = {"stages": (table_at_moments(history, _stage_id(spec), moments), name)}
    if spec.declared:
        events, source = folder_activity(folder, spec, raw, frame)
        columns = spec.activity
        assert columns is not None
        private["events"] = (table_at_moments(events, columns.id, moments), source)
    raw[AT_MOMENTS + "stages"] = private["stages"]  # the history as the moments' labels read it
    return at, private


AT_MOMENTS = "moments:"  # in ``Loaded``: a table copied for each moment, beside the table as read


def labelled_history(loaded: Loaded, spec: DatasetSpec) -> pd.DataFrame | None:
    """The status history the labels were read from (copied per moment with ``moments``), if read."""
    key = (AT_MOMENTS if spec.moments is not None else "") + "stages"
    return loaded[key][0] if key in loaded else None


def _history(
    folder: Path, spec: DatasetSpec, loaded: Loaded, frame: pd.DataFrame
) -> tuple[pd.DataFrame, str]:
    if spec.stages is None or not spec.id:
        raise UserError(
            "spec key 'moments': scoring moments come from the status history (spec keys 'stages', 'id')"
        )
    return declared_table(folder, spec, "stages", spec.stages.columns(), loaded, frame[spec.id])


def _stage_id(spec: DatasetSpec) -> str:
    assert spec.stages is not None
    return spec.stages.id


def with_declared_engagement(
    frame: pd.DataFrame, folder: Path, spec: DatasetSpec, loaded: Loaded | None = None
) -> pd.DataFrame:
    """``frame`` (the leads) with every declared engagement feature computed from the folder's
    activity log as of each lead's scoring time (columns of the same name are replaced)."""
    if spec.moments is not None and MOMENT_OF not in frame.columns and spec.stages is not None:
        history, _ = _history(folder, spec, loaded if loaded is not None else {}, frame)
        frame = latest_moment(frame, moment_table(frame, history, spec), spec)  # scored at its latest
    if spec.activity is None:
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
    events, source = folder_activity(folder, spec, loaded, frame, read_columns(spec.definitions))
    _check_definitions(events, source, spec)
    frame = engagement_from(frame, events, spec) if spec.declared else frame
    return with_account_scope(frame, folder, events, spec)  # ``scope: account`` ones, if any


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


def folder_activity(
    folder: Path,
    spec: DatasetSpec,
    loaded: Loaded | None = None,
    leads: pd.DataFrame | None = None,
    wanted: list[str] | None = None,
) -> tuple[pd.DataFrame, str]:
    """The folder's activity as the engine reads it (``spec.activity``'s columns): one plain log as it
    is, or every log stacked (``data/activity.py``); with the leads, ids in their form; ``wanted``: the
    attribute columns the caller reads (a Parquet log then reads only those and the named ones)."""
    columns = spec.activity
    assert columns is not None and spec.events is not True and spec.events is not False
    if columns.log is None:
        named = {"id": columns.id, "time": columns.time, "type": columns.type}
        lead_ids = leads[spec.id] if leads is not None and spec.id else None
        return declared_table(folder, spec, "events", named, loaded, lead_ids, wanted)
    if loaded is not None and "events" in loaded:
        return loaded["events"]
    stacked = stacked_logs(folder, spec, leads)
    if loaded is not None:
        loaded["events"] = stacked
    return stacked


def declared_table(
    folder: Path,
    spec: DatasetSpec,
    kind: str,
    columns: dict[str, str],
    loaded: Loaded | None = None,
    lead_ids: pd.Series | None = None,
    wanted: list[str] | None = None,
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
    if wanted is None:
        table = read_table(path)
    else:  # what is matched on (the type, the definitions' attributes) read as categories
        coded = [name for key, name in columns.items() if key not in ("id", "time")]
        table = read_some_columns(path, [*columns.values(), *wanted], categories=[*coded, *wanted])
    require_columns(table.columns, path.name, kind, columns)
    if kind == "stages" and spec.stages is not None and spec.stages.where:
        table = stage_rows(table, spec.stages.wanted(), path.name)
    if lead_ids is not None:
        table = joined(table, columns["id"], lead_ids, path.name, kind)
    if loaded is not None:
        loaded[kind] = (table, path.name)
    return table, path.name


def _check_definitions(events: pd.DataFrame, source: str, spec: DatasetSpec) -> None:
    """Each definition against its own log's columns and event types (one line naming its key)."""
    columns = spec.activity
    assert columns is not None
    if columns.log is None:
        check_definitions(events.columns, _types(events[columns.type]), source, spec)
        return
    of = spec.log_of()
    for name in spec.logs:
        rows = events.loc[events[columns.log].to_numpy() == name]
        if rows.empty and spec.logs[name].optional:
            continue  # an optional log this export lacks: nothing to check its definitions against
        own = [c for c in rows.columns if rows[c].notna().any()]
        wanted = {d for d, log in of.items() if log == name}
        check_definitions(own, _types(rows[columns.type]), f"log '{name}' ({source})", spec, wanted)


def _types(series: pd.Series) -> set[str]:
    return {str(v).strip().casefold() for v in series.dropna().unique()}


def check_definitions(
    columns: Iterable[str],
    present: set[str],
    source: str,
    spec: DatasetSpec,
    only: set[str] | None = None,
) -> None:
    """A definition naming a column or an event type the log does not have (``columns``; ``present``:
    its event types, trimmed and case-folded) is one line naming its key (``only``: these definitions)."""
    have = set(columns)
    for name, d in spec.definitions.items():
        if only is not None and name not in only:
            continue
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
    history, source = declared_table(folder, spec, "stages", log.columns(), loaded, frame[spec.id])
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
    return folded_stages(history[spec.stages.stage]), wanted


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


def read_leads(data: str | Path, spec: DatasetSpec, *, labels: bool = False) -> pd.DataFrame:
    """The leads of a file or a data folder as a model reads them: a folder of declared tables gets
    its declared features (and, with ``labels``, its labels from the status history)."""
    if not is_declared_folder(data, spec):
        return with_scoring_time(read_table(resolve_leads_path(data)), spec)
    folder = Path(data)
    frame = with_scoring_time(read_table(leads_path(folder, spec)), spec)
    if labels:
        return with_declared_tables(frame, folder, spec)[0]
    return with_declared_engagement(frame, folder, spec) if spec.definitions else frame


def read_activity(data: str | Path, spec: DatasetSpec) -> pd.DataFrame | None:
    """A folder's activity log with the generator's column names (``lead_id``, ``occurred_at``,
    ``event_type``) whatever the CRM calls them, for timelines; None when there is none."""
    log = spec.activity
    if log is not None and log.log is not None:  # several logs, or one keyed by email: stacked
        if not Path(data).is_dir() or not all_logs_found(Path(data), spec):
            return None
        events, _ = stacked_logs(Path(data), spec, read_table(leads_path(Path(data), spec)))
    else:
        found = read_folder_table(data, spec.table("events"))
        if found is None:
            return None
        events = found
    if log is not None:
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
    return declared_table(folder, spec, "stages", spec.stages.columns())
