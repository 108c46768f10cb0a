"""What was seen of each lead after its scoring time: the days to its first SQL, or the days it was
observed without one (censored by its window's end or by the export's day)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadscore.features.values import MS_PER_DAY


@dataclass(frozen=True)
class Observed:
    """What was seen of each lead after its scoring time: the days to its first SQL (``event``), or
    the days it was observed without one (censored: the window's end, or the export's day)."""

    days: np.ndarray
    event: np.ndarray


def observed(
    scored_ms: np.ndarray, sql_ms: np.ndarray, export_ms: float | None, window_days: float = 90.0
) -> Observed:
    """``sql_ms``: the first SQL after the scoring time (NaN: none seen); ``export_ms``: the day the
    export was taken (None: every window closed)."""
    day = float(MS_PER_DAY)
    seen = np.full(len(scored_ms), window_days) if export_ms is None else (export_ms - scored_ms) / day
    seen = np.clip(seen, 0.0, window_days)
    to_sql = (sql_ms - scored_ms) / day
    event = ~np.isnan(to_sql) & (to_sql <= seen)
    return Observed(np.where(event, to_sql, seen), event)


def known_by(obs: Observed, days: float) -> tuple[np.ndarray, np.ndarray]:
    """Leads whose outcome by ``days`` is known (observed that long, or SQL before), and the outcome."""
    known = obs.event & (obs.days <= days) | (obs.days >= days)
    return known, obs.event & (obs.days <= days)
