"""Declared engagement features: named aggregations over a CRM's own activity log, as of each lead's
scoring time.

A dataset spec may declare its engagement fields instead of listing columns::

    engagement:
      pricing_views_7d:   {count: Visit Webpage, where: {Page URL: "*pricing*"}, days: 7}
      visit_days_7d:      {distinct_days: Visit Webpage, days: 7}
      email_clicks_decay: {count: Click Email, half_life_days: 14}
      days_since_active:  {days_since_last: any}
      time_on_site:       {sum: Time On Page, of: Visit Webpage}

One engine computes them, vectorised over every event at once: only events at or before each lead's
scoring time are read (never a later one), `days` keeps the window before it, `half_life_days`
weighs older events less, `where` matches attribute columns exactly or with `*` wildcards,
case-insensitively, and may list several values.
"""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.values import (
    MS_PER_DAY,
    canonical_category,
    map_unique,
    parse_dates,
    to_epoch_ms,
    to_number,
    to_numbers,
)
from leadscore.spec import ANY, ActivityColumns, Aggregation, DatasetSpec, read_columns

NAT_MS = np.iinfo(np.int64).min  # what ``to_epoch_ms`` gives for a missing or unreadable time


def align_events(
    events: pd.DataFrame,
    anchors: pd.DataFrame,
    *,
    id_col: str,
    time_col: str,
    event_id: str,
    event_time: str,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each event against its lead's scoring time: the number of leads, each event's lead row, its age
    in days, its time (epoch ms), and whether it may be read (a known lead, at or before the scoring
    time: the point in time, never a later event)."""
    anchor_ids = pd.Index(anchors[id_col].to_numpy())
    if not anchor_ids.is_unique:
        raise ValueError(f"anchors: column '{id_col}' has duplicate ids")
    anchor_t = to_epoch_ms(anchors[time_col])
    pos = anchor_ids.get_indexer(events[event_id].to_numpy())
    ev_t = to_epoch_ms(events[event_time])
    pos_safe = np.where(pos >= 0, pos, 0)
    scored = anchor_t[pos_safe]  # each event's lead's scoring time (one gather of 18M rows, not two)
    age_days = (scored - ev_t) / MS_PER_DAY
    # A time that cannot be read (NaT) is never used: it is neither before nor after the scoring time.
    usable = (pos >= 0) & (age_days >= 0) & (ev_t != NAT_MS) & (scored != NAT_MS)
    return len(anchors), pos_safe, age_days, ev_t, usable


def rollups_for_spec(events: pd.DataFrame, anchors: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The spec's declared engagement features per lead (``anchors``: its id and scoring time columns),
    from its activity (one log as it is, or the logs read into one table: ``spec.activity``) as of
    each lead's scoring time."""
    log = spec.activity
    if log is None or not spec.id or not spec.time:
        raise ValueError(f"spec '{spec.name}' declares no activity log (events, id, time)")
    return declared_rollups(
        events,
        anchors,
        spec.declared,
        id_col=spec.id,
        time_col=spec.time,
        event_id=log.id,
        event_time=log.time,
        event_type=log.type,
        log_column=log.log,
        log_of=spec.log_of(),
    )


def declared_rollups(
    events: pd.DataFrame,
    anchors: pd.DataFrame,
    definitions: Mapping[str, Aggregation],
    *,
    id_col: str,
    time_col: str,
    event_id: str,
    event_time: str,
    event_type: str,
    log_column: str | None = None,
    log_of: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every declared feature per lead, from events at or before that lead's scoring time only.

    ``anchors`` has one row per lead (``id_col`` and its scoring time ``time_col``); the result is
    aligned with it row for row. Counts are 0 for a lead without events, times and attribute
    aggregations are missing. With several logs in one table (``log_column``), a definition reads
    the rows of its own log (``log_of``) only.
    """
    n, pos_safe, age, ev_t, usable = align_events(
        events, anchors, id_col=id_col, time_col=time_col, event_id=event_id, event_time=event_time
    )
    coded: dict[str, Coded] = {}  # each column read once: masks are lookups into its distinct values

    def column(name: str, raw: bool = False) -> Coded:
        if name not in coded:
            coded[name] = Coded(events[name], raw)
        return coded[name]

    out: dict[str, np.ndarray] = {}
    for name, d in definitions.items():
        mask = usable & type_mask(column(event_type), d.types)
        if log_column is not None and log_of is not None:
            mask &= column(log_column, raw=True).mask(partial(operator.eq, log_of[name]))
        for where_col, wanted in d.where.items():
            mask &= where_mask(column(where_col), wanted)
        if d.days is not None:
            mask &= age <= d.days
        out[name] = aggregate(d, mask, pos_safe, age, ev_t, events, n)
    return pd.DataFrame(out, index=anchors.index)


class Coded:
    """A column as codes into its distinct values, each read once (trimmed and case-folded, or as
    written with ``raw``): a mask over millions of events is a lookup, not a string compare."""

    def __init__(self, series: pd.Series, raw: bool = False) -> None:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        self.codes = codes  # -1 (missing) reads the last slot
        values = [v if raw else (canonical_category(v) or "") for v in uniques]
        self.values: list[Any] = [*values, None if raw else ""]

    def mask(self, keep: Callable[[Any], bool]) -> np.ndarray:
        lookup = np.fromiter((bool(keep(v)) for v in self.values), dtype=bool, count=len(self.values))
        return lookup[self.codes]


def type_mask(types: Coded, wanted: list[str]) -> np.ndarray:
    folded = {w.strip().casefold() for w in wanted}
    if ANY in folded:
        return np.ones(len(types.codes), dtype=bool)
    return types.mask(lambda v: v in folded)


def where_mask(values: Coded, wanted: str | list[str]) -> np.ndarray:
    patterns = [w.casefold() for w in ([wanted] if isinstance(wanted, str) else wanted)]
    return values.mask(lambda text: any(fnmatch.fnmatchcase(text, p) for p in patterns))


def aggregate(
    d: Aggregation,
    mask: np.ndarray,
    pos: np.ndarray,
    age: np.ndarray,
    ev_t: np.ndarray,
    events: pd.DataFrame,
    n: int,
) -> np.ndarray:
    rows = pos[mask]
    kind = d.kind
    if kind == "count":
        weights = 0.5 ** (age[mask] / d.half_life_days) if d.half_life_days else None
        counts = np.bincount(rows, weights=weights, minlength=n)
        return np.round(counts, 6) if weights is not None else counts.astype(np.int64)
    if kind == "returns":  # every event after the first one in the window: return visits
        return np.maximum(np.bincount(rows, minlength=n) - 1, 0).astype(np.int64)
    if kind == "distinct_days":
        day = np.floor(ev_t[mask] / MS_PER_DAY).astype(np.int64)
        return distinct_per_row(rows, day, n)
    if kind in ("days_since_last", "days_since_first"):
        pick = np.fmin if kind == "days_since_last" else np.fmax
        best = np.full(n, np.nan)
        pick.at(best, rows, age[mask])
        return np.round(best, 3)
    assert d.attribute is not None
    if d.attribute not in events.columns:
        raise ValueError(f"events: attribute column '{d.attribute}' is missing")
    values = events[d.attribute].to_numpy(dtype=object)[mask]
    if kind == "last":
        return _last(rows, ev_t[mask], values, n)
    if kind == "unique":
        folded = pd.Series(values, dtype=object).map(canonical_category)
        codes = pd.factorize(folded, use_na_sentinel=True)[0]
        keep = codes >= 0
        return distinct_per_row(rows[keep], codes[keep].astype(np.int64), n)
    numbers = numbers_of(events[d.attribute], mask)
    ok = ~np.isnan(numbers)
    rows, numbers = rows[ok], numbers[ok]
    if kind == "sum":
        weights = 0.5 ** (age[mask][ok] / d.half_life_days) if d.half_life_days else 1.0
        return np.round(np.bincount(rows, weights=numbers * weights, minlength=n), 6)
    if kind == "mean":
        total = np.bincount(rows, weights=numbers, minlength=n)
        count = np.bincount(rows, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)
    best = np.full(n, np.nan)
    (np.fmin if kind == "min" else np.fmax).at(best, rows, numbers)
    return best


def numbers_of(column: pd.Series, mask: np.ndarray) -> np.ndarray:
    """The masked events' attribute as numbers, as ``to_number`` reads each value: a numeric column
    at once, text once per distinct value ("1,200" -> 1200, junk -> NaN)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return to_numbers(column)[mask]
    return map_unique(column[mask], to_number)


def distinct_per_row(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """How many distinct ``values`` each lead row has (one sort of a combined int64 key)."""
    if not len(rows):
        return np.zeros(n, dtype=np.int64)
    low = values.min()
    span = int(values.max() - low) + 1
    keys = np.unique(rows.astype(np.int64) * span + (values - low))
    return np.bincount(keys // span, minlength=n).astype(np.int64)


def _last(rows: np.ndarray, times: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Each lead's value at its latest event (ties: the later row)."""
    out = np.full(n, None, dtype=object)
    if not len(rows):  # no event qualifies (a lead sent without one): every value missing
        return out
    order = np.lexsort((np.arange(len(rows)), times, rows))
    last_of_lead = np.r_[rows[order][1:] != rows[order][:-1], True]
    chosen = order[last_of_lead]
    out[rows[chosen]] = values[chosen]
    return out


def rollups_for_lead(events: list[dict[str, Any]], scored_at_ms: float, spec: DatasetSpec) -> dict[str, Any]:
    """The declared features of one lead from its own recent activity (the service's path): each
    event is ``{"type": ..., "time": ..., "log": ..., <attribute>: ...}`` (``log``: which of several
    logs, the first when absent); the same engine as for a folder."""
    log = spec.activity
    assert log is not None
    definitions = spec.declared
    frame = request_events([(0, events)], log, next(iter(spec.logs)), read_columns(definitions))
    anchors = pd.DataFrame({"id": [0], "t": pd.to_datetime([int(scored_at_ms)], unit="ms")})
    out = declared_rollups(
        frame,
        anchors,
        definitions,
        id_col="id",
        time_col="t",
        event_id=log.id,
        event_time=log.time,
        event_type=log.type,
        log_column=log.log,
        log_of=spec.log_of(),
    )
    return {
        name: (None if _missing(v) else (v.item() if hasattr(v, "item") else v))
        for name, v in out.iloc[0].items()
    }


def request_events(
    sent: Iterable[tuple[Any, Iterable[Mapping[str, Any]]]],
    columns: ActivityColumns,
    first_log: str,
    read: Iterable[str],
) -> pd.DataFrame:
    """Events sent through the API (each ``{"type", "time", "log", <attributes>}``, with its lead's
    id) as the engine's activity table: times read by the one date rule (``parse_dates``: a time that
    is not one is missing and never read), each row's log (the first when not named) where there are
    several, and every attribute column ``read`` present (empty where no event sent it)."""
    named = [columns.id, columns.type, columns.time, *([columns.log] if columns.log else [])]
    data: dict[str, list[Any]] = {c: [] for c in dict.fromkeys([*named, *read])}
    attributes = [(c, data[c]) for c in data if c not in named]
    ids, types, times = data[columns.id], data[columns.type], data[columns.time]
    logs = data[columns.log] if columns.log else None
    for lead, events in sent:  # column by column: no dict per event
        for e in events:
            ids.append(lead)
            types.append(e.get("type"))
            times.append(e.get("time"))
            if logs is not None:
                logs.append(e.get("log") or first_log)
            for column, values in attributes:
                values.append(e.get(column))
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in data.items()})
    frame[columns.time] = parse_dates(frame[columns.time])
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
