"""The time-to-SQL head at scoring time: P(SQL within 7, 30 and 90 days) and the median day.

A hazard booster (trained by ``modeling/time_to_sql.py``) gives each lead's chance of reaching SQL
in each day interval after its scoring time, having not reached it before; P(SQL by day t) is one
minus the product of surviving each interval up to t, so the horizons are monotone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leadscore.scoring.single_row import predict

INTERVALS = (0.0, 7.0, 14.0, 30.0, 60.0, 90.0)  # day bounds after the scoring time
HORIZONS = (7, 30, 90)
_SHOWN = [INTERVALS.index(7.0) - 1, INTERVALS.index(30.0) - 1]  # the answer's horizons' columns
OVER = "over 90"  # expected_days_to_sql when P(SQL within 90 days) stays below one half


@dataclass
class TimeHead:
    """The fitted hazard booster."""

    booster: Any  # a lightgbm.Booster (or anything with its predict)
    num_threads: int = 1
    additive: bool = False  # trees use the interval alone or the lead alone (see ``hazards``)
    _parts: np.ndarray | None = field(default=None, repr=False)

    def hazards(self, X: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """(n, intervals): each interval's chance of SQL for a lead that had not reached it before.
        The booster's trees use the interval alone or the lead alone (additive log-odds), so each
        lead is walked once, at the first interval, and each interval's own part is added.
        ``num_threads``: the caller's own (a batch scorer's share of the cores), else the bundle's."""
        n, k = len(X), len(INTERVALS) - 1
        threads = num_threads or self.num_threads
        if not self.additive:
            stacked = np.vstack([np.column_stack([X, np.full(n, j, dtype=np.float64)]) for j in range(k)])
            return np.asarray(self.booster.predict(stacked, num_threads=threads)).reshape(k, n).T
        at_first = np.zeros((n, X.shape[1] + 1))  # each lead at the first interval (0)
        at_first[:, :-1] = X  # (np.column_stack cost one lead more than the walk's call itself)
        lead = predict(self.booster, at_first, "raw", threads)
        return 1.0 / (1.0 + np.exp(-(lead[:, None] + self._interval_parts(X.shape[1])[None, :])))

    def _interval_parts(self, width: int) -> np.ndarray:
        """Each interval's part of the log-odds, relative to the first (read once per booster)."""
        if self._parts is None:
            k = len(INTERVALS) - 1
            probe = np.column_stack([np.full((k, width), np.nan), np.arange(k, dtype=np.float64)])
            raw = np.asarray(self.booster.predict(probe, raw_score=True, num_threads=1))
            self._parts = raw - raw[0]
        return self._parts

    def cumulative(self, X: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """(n, intervals): P(SQL by each interval's end), monotone in the horizon."""
        return 1.0 - np.cumprod(1.0 - self.hazards(X, num_threads), axis=1)

    def within(self, X: np.ndarray, days: float) -> np.ndarray:
        """P(SQL within ``days``), for ``days`` an interval bound (7, 14, 30, 60 or 90)."""
        return self.cumulative(X)[:, INTERVALS.index(float(days)) - 1]

    def median_days(self, X: np.ndarray) -> np.ndarray:
        """The day by which P(SQL) reaches one half (constant hazard within an interval); NaN where it
        stays below one half within 90 days ("over 90")."""
        return median_from(self.cumulative(X))

    def answer_fields(self, X: np.ndarray, num_threads: int | None = None) -> list[dict[str, Any]]:
        """Each lead's ``p_sql_7d``, ``p_sql_30d`` and ``expected_days_to_sql`` (a number of days, or
        "over 90"): the booster walked once for all three, on the caller's threads (``num_threads``)."""
        cum = self.cumulative(X, num_threads)
        p7, p30 = np.round(cum[:, _SHOWN].T, 6).tolist()  # P(SQL within 7 and 30 days), one call
        days = [OVER if np.isnan(d) else round(float(d), 1) for d in median_from(cum)]
        return [
            {"p_sql_7d": a, "p_sql_30d": b, "expected_days_to_sql": c}
            for a, b, c in zip(p7, p30, days, strict=True)
        ]


def median_from(cum: np.ndarray) -> np.ndarray:
    """``TimeHead.median_days`` from the cumulative chances already computed (a lead or two, as the
    service scores them, in plain Python: numpy's per-call cost is most of the time for one row)."""
    if len(cum) <= SMALL:
        return np.array([_median_one(row) for row in cum.tolist()], dtype=float).reshape(len(cum))
    out = np.full(len(cum), np.nan)
    before = np.zeros(len(cum))
    for k, (start, end) in enumerate(zip(INTERVALS[:-1], INTERVALS[1:], strict=True)):
        crossing = np.isnan(out) & (cum[:, k] >= 0.5)
        survive_start, survive_end = 1.0 - before[crossing], 1.0 - cum[crossing, k]
        rate = np.log(np.maximum(survive_start, 1e-12) / np.maximum(survive_end, 1e-12)) / (end - start)
        out[crossing] = start + np.log(np.maximum(survive_start, 1e-12) / 0.5) / np.maximum(rate, 1e-12)
        before = cum[:, k]
    return out


SMALL = 4  # rows at most for the plain-Python median


def _median_one(cum: list[float]) -> float:
    """One lead's median day: the same arithmetic as ``median_from``'s vector path."""
    before = 0.0
    for k, (start, end) in enumerate(zip(INTERVALS[:-1], INTERVALS[1:], strict=True)):
        if cum[k] >= 0.5:
            survive_start, survive_end = max(1.0 - before, 1e-12), max(1.0 - cum[k], 1e-12)
            rate = math.log(survive_start / survive_end) / (end - start)
            return start + math.log(survive_start / 0.5) / max(rate, 1e-12)
        before = cum[k]
    return math.nan
