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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from leadscore.features import FeatureEncoder, dates_ms
from leadscore.modeling.dataset import Split, TrainingData
from leadscore.modeling.evaluate import expected_calibration_error, reliability_table
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.survival import Observed, known_by, observed
from leadscore.scoring.time_head import HORIZONS, INTERVALS, TimeHead
from leadscore.spec import DatasetSpec

__all__ = [
    "HORIZONS",
    "INTERVALS",
    "Observed",
    "TimeHead",
    "concordance",
    "fit_time_head",
    "known_by",
    "observed",
]

PARAMS = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 7,
    "max_depth": 3,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "verbose": -1,
}


def period_index(obs: Observed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One entry per lead and interval it was observed through (or reached SQL in): the lead's row,
    the interval's number, and whether it reached SQL in that interval."""
    leads, intervals, labels = [], [], []
    for k, (start, end) in enumerate(zip(INTERVALS[:-1], INTERVALS[1:], strict=True)):
        hit = obs.event & (obs.days >= start) & (obs.days < end if end < INTERVALS[-1] else obs.days <= end)
        through = obs.days >= end
        at_risk = (obs.days >= start) & (hit | through) & ~(obs.event & (obs.days < start))
        idx = np.flatnonzero(at_risk)
        leads.append(idx)
        intervals.append(np.full(len(idx), k, dtype=np.float64))
        labels.append(hit[idx].astype(np.float64))
    return np.concatenate(leads), np.concatenate(intervals), np.concatenate(labels)


def person_periods(X: np.ndarray, obs: Observed) -> tuple[np.ndarray, np.ndarray]:
    """The person-period rows: each lead's features with the interval's number appended, and
    whether it reached SQL in that interval (``period_index``)."""
    idx, interval, y = period_index(obs)
    return np.column_stack([X[idx], interval]), y


def _periods(
    X: np.ndarray, obs: Observed, rows: np.ndarray, cap: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The person-periods of ``rows``, sampled to about ``cap`` before the features are gathered
    (a large export's periods are never all built)."""
    idx, interval, y = period_index(_at(obs, rows))
    keep, weight = sampled(y, cap, rng)
    if keep is not None:
        idx, interval, y = idx[keep], interval[keep], y[keep]
    return np.column_stack([X[rows[idx]], interval]), y, weight


# Person-periods the booster learns from; beyond, non-SQL rows are sampled and weighted back. At 1M
# leads (4.4M periods) 500,000 gave the same head as 1.5M (C 0.8519 / 0.8521, ECE at 90 days 0.0059 /
# 0.0058) in a third of the time (8.9 s against 26.6 s), and 250,000 the same again (C 0.8516, ECE at
# 30 / 90 days 0.0048 / 0.0052 against 0.0046 / 0.0059) in half of that (3.8 s): docs/performance.md.
MAX_PERIODS = 250_000


def sampled(y: np.ndarray, cap: int, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Which of the person-periods labelled ``y`` to keep, at most about ``cap``, and their weights:
    every SQL row kept, the others sampled at one rate and weighted by its inverse, so each
    interval's hazard is learned without bias (the likelihood's expectation is unchanged) at a
    bounded cost on large exports. (None, None) when nothing is dropped."""
    negative = y == 0
    room = cap - int((~negative).sum())
    if len(y) <= cap or room <= 0:
        return None, None
    rate = room / int(negative.sum())
    keep = ~negative | (rng.random(len(y)) < rate)
    return keep, np.where(negative[keep], 1.0 / rate, 1.0)


def _at(obs: Observed, rows: np.ndarray) -> Observed:
    return Observed(obs.days[rows], obs.event[rows])


def fit_time_head(
    X: np.ndarray,
    obs: Observed,
    fit_rows: np.ndarray,
    valid_rows: np.ndarray,
    seed: int = 42,
    num_threads: int = 1,
) -> TimeHead:
    """The hazard booster, stopped early on the validation leads' person-periods."""
    rng = np.random.default_rng(seed)
    Xf, yf, wf = _periods(X, obs, fit_rows, MAX_PERIODS, rng)
    Xv, yv, wv = _periods(X, obs, valid_rows, MAX_PERIODS // 4, rng)
    interval = Xf.shape[1] - 1
    # Trees use the interval alone or the lead's fields alone: the log-odds of the hazard is the
    # lead's part plus the interval's (a discrete-time proportional-odds model), so scoring a lead
    # takes one walk of the trees for all its intervals.
    lead_fields = list(range(interval))
    params = {
        **PARAMS,
        "seed": seed,
        "num_threads": num_threads,
        "deterministic": True,
        "interaction_constraints": [[interval], lead_fields],
    }
    train = lgb.Dataset(Xf, yf, weight=wf, categorical_feature=[interval], free_raw_data=True)
    valid = lgb.Dataset(Xv, yv, weight=wv, reference=train, categorical_feature=[interval])
    booster = lgb.train(
        params,
        train,
        num_boost_round=400,  # capped: every batch walks these trees once per lead
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    return TimeHead(booster, num_threads, additive=True)


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


MIN_EVENTS = 40  # fewer SQLs with a known time: no time head (the small-data rule)


@dataclass(frozen=True)
class TimedModel:
    """A fitted time head as a bundle keeps it: the booster's text and what it measured on the test."""

    booster_text: str
    facts: dict[str, Any]


def train_time_head(
    X: np.ndarray,
    obs: Observed,
    in_test: np.ndarray,
    when_ms: np.ndarray,
    p_sql_test: np.ndarray,
    seed: int = 42,
    num_threads: int = 1,
) -> TimedModel | None:
    """Fit on the leads outside the classification test (older 80% fit, newer 20% stop early), judge
    on the test leads: calibration per horizon on leads whose outcome by then is known, Harrell's C,
    and P(SQL within 90 days) against the classification model's calibrated p_sql."""
    rest = np.flatnonzero(~in_test)
    if int(obs.event[rest].sum()) < MIN_EVENTS or not in_test.any():
        return None
    rest = rest[np.argsort(when_ms[rest], kind="stable")]
    cut = int(round(0.8 * len(rest)))
    head = fit_time_head(X, obs, rest[:cut], rest[cut:], seed, num_threads)
    test = np.flatnonzero(in_test)
    seen = Observed(obs.days[test], obs.event[test])
    cum = head.cumulative(X[test])
    horizons = {}
    for days in HORIZONS:
        known, y = known_by(seen, days)
        p = cum[:, INTERVALS.index(float(days)) - 1]
        horizons[str(days)] = _calibration(y[known], p[known])
    known90, y90 = known_by(seen, 90)
    p90 = cum[:, -1]
    facts = {
        "intervals": list(INTERVALS),
        "additive": True,
        "horizons": horizons,
        "concordance": concordance(p90, seen),
        "test_leads": int(len(test)),
        "trained_on": int(len(rest)),
        "open_windows_used": int((~obs.event[rest] & (obs.days[rest] < INTERVALS[-1])).sum()),
        "p_sql_90d_vs_p_sql": float(np.mean(np.abs(p90[known90] - p_sql_test[known90])))
        if known90.any()
        else None,
        "ece_p_sql": expected_calibration_error(y90[known90], p_sql_test[known90]) if known90.any() else None,
    }
    return TimedModel(head.booster.model_to_string(), facts)


def _calibration(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    if not len(y):
        return {"leads": 0}
    return {
        "leads": int(len(y)),
        "ece": expected_calibration_error(y, p),
        "mean_p": float(np.mean(p)),
        "observed": float(np.mean(y)),
        "reliability": reliability_table(y, p, 10),
    }


def time_head(
    encoder: FeatureEncoder,
    p_sql: Callable[[pd.DataFrame], np.ndarray],
    data: TrainingData,
    split: Split,
    spec: DatasetSpec,
    options: TrainOptions,
) -> TimedModel | None:
    """The time-to-SQL head, from every labelled lead (open windows for the days they were seen),
    judged on the classification test leads against ``p_sql`` (the evaluated model's calibrated score
    of those leads); ``encoder`` is the shipped model's, whose layout the head shares at scoring time.
    None without SQL times (a flat export) or few SQLs."""
    survival = data.survival
    if survival is None or not spec.id or not spec.time:
        return None
    X = encoder.transform(survival.frame)
    test_ids = pd.Index(data.frame[spec.id].iloc[split.test])
    in_test = survival.frame[spec.id].isin(test_ids).to_numpy()
    p_test = p_sql(survival.frame.loc[in_test]) if in_test.any() else np.zeros(0)
    when = dates_ms(survival.frame[spec.time])
    return train_time_head(X, survival.obs, in_test, when, p_test, options.seed, options.num_threads)
