"""Labels from a flat export's lifecycle dates (``label.date_columns``).

HubSpot's contact export carries a date per lifecycle stage ("Became a Sales Qualified Lead Date",
"Became an Opportunity Date" ...). A lead is SQL when any of the named dates falls after its
scoring time and within ``label.within_days``; a lead already past one of them when it was scored
has no label (it was qualified before the model could have helped) and is left out, counted. The
same dates give each lead's time to SQL, for the time head.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.errors import UserError
from leadscore.features.values import MS_PER_DAY, dates_ms
from leadscore.spec import DatasetSpec


class DateLabels:
    """What a flat export's lifecycle dates say of each lead: ``label.date_columns``, or the ``columns``
    given (a flat export's one column of SQL dates, ``label.reached_at``, checked by its caller)."""

    def __init__(self, frame: pd.DataFrame, spec: DatasetSpec, columns: list[str] | None = None) -> None:
        if columns is None:
            columns = spec.label.date_columns or []
            require_date_columns(frame, spec)
        assert spec.time is not None
        self.scored = dates_ms(frame[spec.time])
        dates = (
            np.column_stack([dates_ms(frame[c]) for c in columns]) if columns else np.empty((len(frame), 0))
        )
        delta = dates - self.scored[:, None]
        inside = (delta >= 0) & (delta <= spec.label.within_days * MS_PER_DAY)
        self.past = (delta < 0).any(axis=1)  # already at the stage when scored
        self.y = inside.any(axis=1).astype(np.int8)
        self.known = ~np.isnan(self.scored) & ~self.past
        first = np.where(inside, dates, np.inf).min(axis=1)
        self.first = np.where(np.isfinite(first), first, np.nan)  # the first SQL date in the window


def require_date_columns(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    """Each ``label.date_columns`` entry and the time column are in the leads table (one line each)."""
    for column in spec.label.date_columns or []:
        if column not in frame.columns:
            raise UserError(f"spec key 'label.date_columns': column '{column}' is not in the leads table")
    if not spec.time or spec.time not in frame.columns:
        raise UserError(
            "spec key 'label.date_columns' needs the scoring time: set spec key 'time' to its column"
        )


def with_scoring_time(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """``frame`` with each lead's scoring moment in the ``time`` column: with ``time`` given as a list
    of columns (``time: [Became a Marketing Qualified Lead Date, Create Date]``), the first of them
    that is filled. Every reader of leads goes through here, so training, scores, reports and the
    monitor agree on each lead's moment."""
    if not spec.time or not spec.time_also:
        return frame
    present = [c for c in (spec.time, *spec.time_also) if c in frame.columns]
    if not present:
        return frame
    moment = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    for column in present:
        values = frame[column]
        empty = moment.isna() | (moment.astype("string").str.strip() == "").fillna(True)
        moment = moment.where(~empty.to_numpy(dtype=bool), values.astype(object))
    out = frame.copy()
    out[spec.time] = moment
    return out
