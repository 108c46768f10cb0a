"""Time to SQL, learned with censoring: P(SQL within 7, 30 and 90 days) per lead.

A discrete-time hazard model over day intervals: every lead contributes one row per interval it
was observed through (its features and the interval), labelled 1 in the interval where it reached
SQL. A lead whose window was still open on the export's day counts for the intervals it was
observed through, so the open leads that classification leaves out still teach the "when". One
LightGBM booster learns the hazard of each interval; P(SQL by day t) is one minus the product of
surviving each interval up to t, so the horizons are monotone by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

INTERVALS = (0.0, 7.0, 14.0, 30.0, 60.0, 90.0)  # day bounds after the scoring time
HORIZONS = (7, 30, 90)
PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "max_depth": 3,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "verbose": -1,
}


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
    day = 86_400_000.0
    seen = np.full(len(scored_ms), window_days) if export_ms is None else (export_ms - scored_ms) / day
    seen = np.clip(seen, 0.0, window_days)
    to_sql = (sql_ms - scored_ms) / day
    event = ~np.isnan(to_sql) & (to_sql <= seen)
    return Observed(np.where(event, to_sql, seen), event)


def person_periods(X: np.ndarray, obs: Observed) -> tuple[np.ndarray, np.ndarray]:
    """One row per lead and interval it was observed through (or reached SQL in): the lead's
    features with the interval's number appended, and whether it reached SQL in that interval."""
    rows, labels = [], []
    for k, (start, end) in enumerate(zip(INTERVALS[:-1], INTERVALS[1:], strict=True)):
        hit = obs.event & (obs.days >= start) & (obs.days < end if end < INTERVALS[-1] else obs.days <= end)
        through = obs.days >= end
        at_risk = (obs.days >= start) & (hit | through) & ~(obs.event & (obs.days < start))
        idx = np.flatnonzero(at_risk)
        rows.append(np.column_stack([X[idx], np.full(len(idx), k, dtype=np.float64)]))
        labels.append(hit[idx].astype(np.float64))
    return np.vstack(rows), np.concatenate(labels)


@dataclass
class TimeHead:
    """The fitted hazard booster."""

    booster: lgb.Booster
    num_threads: int = 1

    def hazards(self, X: np.ndarray) -> np.ndarray:
        """(n, intervals): each interval's chance of SQL for a lead that had not reached it before."""
        n, k = len(X), len(INTERVALS) - 1
        stacked = np.vstack([np.column_stack([X, np.full(n, j, dtype=np.float64)]) for j in range(k)])
        h = np.asarray(self.booster.predict(stacked, num_threads=self.num_threads))
        return h.reshape(k, n).T

    def cumulative(self, X: np.ndarray) -> np.ndarray:
        """(n, intervals): P(SQL by each interval's end), monotone in the horizon."""
        return 1.0 - np.cumprod(1.0 - self.hazards(X), axis=1)

    def within(self, X: np.ndarray, days: float) -> np.ndarray:
        """P(SQL within ``days``), for ``days`` an interval bound (7, 14, 30, 60 or 90)."""
        return self.cumulative(X)[:, INTERVALS.index(float(days)) - 1]

    def median_days(self, X: np.ndarray) -> np.ndarray:
        """The day by which P(SQL) reaches one half (constant hazard within an interval); NaN where it
        stays below one half within 90 days ("over 90")."""
        cum = self.cumulative(X)
        out = np.full(len(X), np.nan)
        before = np.zeros(len(X))
        for k, (start, end) in enumerate(zip(INTERVALS[:-1], INTERVALS[1:], strict=True)):
            crossing = np.isnan(out) & (cum[:, k] >= 0.5)
            survive_start, survive_end = 1.0 - before[crossing], 1.0 - cum[crossing, k]
            rate = np.log(np.maximum(survive_start, 1e-12) / np.maximum(survive_end, 1e-12)) / (end - start)
            out[crossing] = start + np.log(np.maximum(survive_start, 1e-12) / 0.5) / np.maximum(rate, 1e-12)
            before = cum[:, k]
        return out


def fit_time_head(
    X: np.ndarray,
    obs: Observed,
    fit_rows: np.ndarray,
    valid_rows: np.ndarray,
    seed: int = 42,
    num_threads: int = 1,
) -> TimeHead:
    """The hazard booster, stopped early on the validation leads' person-periods."""
    Xf, yf = person_periods(X[fit_rows], Observed(obs.days[fit_rows], obs.event[fit_rows]))
    Xv, yv = person_periods(X[valid_rows], Observed(obs.days[valid_rows], obs.event[valid_rows]))
    interval = Xf.shape[1] - 1
    params = {**PARAMS, "seed": seed, "num_threads": num_threads, "deterministic": True}
    train = lgb.Dataset(Xf, yf, categorical_feature=[interval], free_raw_data=True)
    valid = lgb.Dataset(Xv, yv, reference=train, categorical_feature=[interval])
    booster = lgb.train(
        params,
        train,
        num_boost_round=2000,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    return TimeHead(booster, num_threads)


def known_by(obs: Observed, days: float) -> tuple[np.ndarray, np.ndarray]:
    """Leads whose outcome by ``days`` is known (observed that long, or SQL before), and the outcome."""
    known = obs.event & (obs.days <= days) | (obs.days >= days)
    return known, obs.event & (obs.days <= days)


def concordance(risk: np.ndarray, obs: Observed, max_pairs: int = 2_000_000, seed: int = 0) -> float:
    """Harrell's C: of comparable pairs (one reached SQL before the other was last seen), the share
    where the earlier SQL had the higher risk (ties count half); sampled pairs for large sets."""
    rng = np.random.default_rng(seed)
    events = np.flatnonzero(obs.event)
    if not len(events):
        return math.nan
    n_pairs = min(max_pairs, len(events) * len(risk))
    i = rng.choice(events, n_pairs)
    j = rng.integers(0, len(risk), n_pairs)
    comparable = obs.days[j] > obs.days[i]
    i, j = i[comparable], j[comparable]
    if not len(i):
        return math.nan
    return float(np.mean((risk[i] > risk[j]) + 0.5 * (risk[i] == risk[j])))
