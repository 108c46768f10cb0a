"""Label maturity: a lead whose label window was still open on the export's day is not a "no".

An export is taken on a day (``observed_until``). A lead scored at ``time`` with "SQL within
``label.within_days``" has its window open until ``time + within_days``; if that is after the export
day, a lead that has not reached SQL yet may still do so: its label is unknown, not negative. A lead
that already reached SQL is a known positive, but keeping open positives while dropping open
negatives would bias the rate upwards, so classification training and every metric use closed
windows only (open leads count for the time they were observed, in the time-to-SQL head). Sales'
decisions (feedback labels) are known whenever they exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.validate import label_values
from leadscore.errors import not_a_date
from leadscore.features import dates_ms, parse_date
from leadscore.features.values import MS_PER_DAY
from leadscore.spec import DatasetSpec

__all__ = [
    "MS_PER_DAY",
    "ExportDay",
    "LabelWindows",
    "export_day",
    "label_windows",
    "matured_labels",
    "parse_observed_until",
]


@dataclass(frozen=True)
class ExportDay:
    """When the export was taken (epoch ms, UTC) and how that was found."""

    ms: float
    how: str  # "spec key 'observed_until'" (also set by --observed-until) or "the latest time in ..."

    @property
    def day(self) -> str:
        return str(np.datetime64(int(self.ms), "ms").astype("datetime64[s]")).replace("T00:00:00", "")


@dataclass(frozen=True)
class LabelWindows:
    """Which leads' label windows were closed on the export day, and what was left out."""

    export_day: ExportDay | None  # None: no time column, every label is taken as known
    closed: np.ndarray  # per lead: its label is known without bias (closed window, or a sales decision)
    open_positive: int  # open windows that already reached SQL (left out of classification)
    open_unknown: int  # open windows without SQL yet (unknown: left out)

    @property
    def left_out(self) -> int:
        return self.open_positive + self.open_unknown

    def to_dict(self) -> dict[str, Any]:
        return {
            "observed_until": self.export_day.day if self.export_day else None,
            "observed_until_from": self.export_day.how if self.export_day else None,
            "closed": int(self.closed.sum()),
            "open_positive": self.open_positive,
            "open_unknown": self.open_unknown,
        }

    def note(self, within_days: float) -> str | None:
        if self.export_day is None:
            return None
        return (
            f"label windows: export taken {self.export_day.day} ({self.export_day.how}); left out "
            f"{self.left_out} leads whose {within_days:g}-day window was still open "
            f"({self.open_positive} already SQL, {self.open_unknown} not yet)"
        )


def parse_observed_until(value: str | date | datetime | None, source: str) -> float | None:
    """A given export day as epoch ms; a date means the end of that day (UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
    elif isinstance(value, date):
        stamp = pd.Timestamp(value) + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
    else:
        ms = parse_date(value)  # epoch ms, NaN when not a date
        if math.isnan(ms):
            raise not_a_date(source, value)
        whole_day = len(str(value).strip()) <= 10  # a bare date: the whole day was observed
        return ms + (MS_PER_DAY - 1 if whole_day else 0)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return float(stamp.value // 1_000_000)


def export_day(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    tables: Mapping[str, tuple[pd.DataFrame, str]] | None = None,
) -> ExportDay | None:
    """The export day: the spec's ``observed_until`` (``--observed-until`` sets it), else the latest
    time found in the status history, the activity log and the leads' own time columns. None without
    a time column."""
    if not spec.time or spec.time not in frame.columns:
        return None
    if spec.observed_until is not None:
        ms = parse_observed_until(spec.observed_until, "spec key 'observed_until'")
        assert ms is not None
        return ExportDay(ms, "spec key 'observed_until'")
    found: list[tuple[float, str]] = []
    for kind, column in (
        ("stages", spec.stages.time if spec.stages else None),
        ("events", _event_time(spec)),
    ):
        if tables and kind in tables and column and column in tables[kind][0].columns:
            found.append((_latest(tables[kind][0][column]), tables[kind][1]))
    for column in dict.fromkeys(
        [spec.time, *spec.dates, spec.label.reached_at, *(spec.label.date_columns or [])]
    ):
        if column and column in frame.columns:
            found.append((_latest(frame[column]), f"column '{column}'"))
    found = [(ms, where) for ms, where in found if not np.isnan(ms)]
    if not found:
        return None
    ms, where = max(found)
    return ExportDay(ms, f"the latest time in {where}")


def _event_time(spec: DatasetSpec) -> str | None:
    return spec.activity.time if spec.activity is not None else None


def _latest(series: pd.Series) -> float:
    values = dates_ms(series)
    values = values[~np.isnan(values)]
    return float(values.max()) if values.size else float("nan")


def label_windows(
    frame: pd.DataFrame,
    y: np.ndarray,
    spec: DatasetSpec,
    day: ExportDay | None,
    decided: np.ndarray | None = None,
) -> LabelWindows:
    """Each lead's window against the export day: closed (or decided by sales) is known."""
    n = len(frame)
    if day is None:
        return LabelWindows(None, np.ones(n, dtype=bool), 0, 0)
    scored = dates_ms(frame[spec.time])
    ends = scored + spec.label.within_days * MS_PER_DAY
    open_ = ~(ends <= day.ms)  # a lead without a readable time counts as open: its window is not known
    if decided is not None:
        open_ &= ~decided
    positive = y.astype(bool)
    return LabelWindows(day, ~open_, int((open_ & positive).sum()), int((open_ & ~positive).sum()))


def matured_labels(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """The label as 0/1 and a mask of leads whose outcome is known without bias: a known label and a
    window closed on the export day (the spec's ``observed_until``, else the latest time in the
    leads). What the monitor and promotion judge a model on."""
    y, known = label_values(frame, spec)
    return y, known & label_windows(frame, y, spec, export_day(frame, spec)).closed
