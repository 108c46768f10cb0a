"""Time to SQL learned with censoring: person-periods, monotone horizons, calibration per horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.data.synthetic import GeneratorConfig, generate
from leadscore.features import FeatureEncoder
from leadscore.modeling import time_to_sql
from leadscore.modeling.evaluate import expected_calibration_error
from leadscore.modeling.time_to_sql import (
    HORIZONS,
    INTERVALS,
    Observed,
    TimeHead,
    concordance,
    fit_time_head,
    known_by,
    observed,
    person_periods,
    sampled,
)
from leadscore.spec import load_spec

DAY = 86_400_000.0


def test_what_was_seen_of_a_lead_ends_at_its_sql_its_window_or_the_export() -> None:
    scored = np.array([0.0, 0.0, 0.0, 0.0])
    sql = np.array([10 * DAY, np.nan, 50 * DAY, 95 * DAY])
    obs = observed(scored, sql, export_ms=40 * DAY)
    assert obs.event.tolist() == [True, False, False, False]  # day 50 was after the export: not seen
    assert obs.days.tolist() == [10.0, 40.0, 40.0, 40.0]
    closed = observed(scored, sql, export_ms=None)
    assert closed.event.tolist() == [True, False, True, False] and closed.days.tolist() == [10, 90, 50, 90]


def test_a_lead_counts_for_the_intervals_it_was_observed_through() -> None:
    X = np.array([[1.0], [2.0], [3.0]])
    obs = Observed(days=np.array([10.0, 20.0, 90.0]), event=np.array([True, False, False]))
    rows, labels = person_periods(X, obs)
    by_lead = {
        v: [(int(r[1]), int(y)) for r, y in zip(rows, labels, strict=True) if r[0] == v] for v in (1, 2, 3)
    }
    assert by_lead[1] == [(0, 0), (1, 1)]  # SQL on day 10: survived 0-7, reached it in 7-14
    assert by_lead[2] == [(0, 0), (1, 0)]  # seen for 20 days: 14-30 not seen through, left out
    assert by_lead[3] == [(k, 0) for k in range(len(INTERVALS) - 1)]  # a closed window without SQL


class _Constant:
    """A booster stand-in with one hazard per interval (to check the arithmetic on known values)."""

    def __init__(self, hazards: list[float]) -> None:
        self.h = np.asarray(hazards)

    def predict(self, X: np.ndarray, num_threads: int = 1) -> np.ndarray:
        return self.h[X[:, -1].astype(int)]


def test_sampled_periods_keep_every_sql_and_weigh_the_rest_back() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(100_000) < 0.03).astype(float)
    keep, w = sampled(y, 20_000, np.random.default_rng(1))
    assert keep is not None and w is not None
    ys = y[keep]
    assert ys.sum() == y.sum() and abs(len(ys) - 20_000) < 600
    assert w[ys == 1].tolist() == [1.0] * int(y.sum())
    assert w[ys == 0].sum() == pytest.approx((y == 0).sum(), rel=0.02)  # the negatives, weighed back
    again, _ = sampled(y, 20_000, np.random.default_rng(1))
    assert again is not None and np.array_equal(again, keep)  # seeded: the same rows
    assert sampled(y, 200_000, rng) == (None, None)  # under the cap: every row, no weights


def test_horizons_are_monotone_and_the_median_is_where_one_half_is_crossed() -> None:
    head = TimeHead(_Constant([0.1, 0.2, 0.3, 0.2, 0.1]))
    X = np.zeros((2, 1))
    cum = head.cumulative(X)
    assert np.all(np.diff(cum, axis=1) > 0)
    assert head.within(X, 7)[0] == pytest.approx(0.1) and head.within(X, 14)[0] == pytest.approx(
        1 - 0.9 * 0.8
    )
    # 0.1 by day 7, 0.28 by 14, 0.496 by 30, 0.597 by 60: one half is crossed in 30-60, where a
    # constant hazard takes the survival from 0.504 to 0.4032.
    rate = np.log(0.504 / 0.4032) / 30
    assert head.median_days(X)[0] == pytest.approx(30 + np.log(0.504 / 0.5) / rate)
    never = TimeHead(_Constant([0.01] * 5))
    assert np.isnan(never.median_days(X)).all()  # below one half by day 90: "over 90"


@pytest.mark.slow
@pytest.mark.parametrize("cap", [None, 30_000], ids=["every period", "sampled periods"])
def test_the_time_head_is_calibrated_per_horizon_on_matured_leads(
    cap: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if cap is not None:  # a large export's bounded cost: a third of the non-SQL periods, weighted back
        monkeypatch.setattr(time_to_sql, "MAX_PERIODS", cap)
    spec = load_spec("synthetic")
    train = generate(GeneratorConfig(leads=20_000, seed=1, fault_rate=0.0))[
        "leads"
    ].to_pandas()  # open windows
    # 40,000 matured leads measure the 90-day ECE finely enough for the bound: across training seeds
    # it sits at 0.007-0.010, and 12,000 test leads moved it by about 0.002 either way
    test = generate(GeneratorConfig(leads=40_000, seed=2, fault_rate=0.0, observed_until="uncut"))[
        "leads"
    ].to_pandas()
    enc = FeatureEncoder.fit(
        train,
        [*spec.fit, *spec.engagement],
        kinds=dict.fromkeys(spec.categorical, "categorical"),
        time_col=spec.time,
    )

    def times(leads: pd.DataFrame, export: float | None) -> Observed:
        scored = leads["scored_at"].astype("int64").to_numpy() / 1.0
        return observed(scored, scored + leads["true_days_to_sql"].to_numpy(dtype=float) * DAY, export)

    obs = times(train, train["scored_at"].max().value / 1e6 + 7 * DAY)
    assert (~obs.event & (obs.days < 90)).sum() > 1000  # open leads teach the head for the days seen
    order = np.argsort(train["scored_at"].to_numpy(), kind="stable")
    head = fit_time_head(enc.transform(train), obs, order[:16_000], order[16_000:], seed=1)
    assert head.booster.num_trees() > 20
    X, truth = enc.transform(test), times(test, None)
    for days in HORIZONS:
        known, y = known_by(truth, days)
        assert expected_calibration_error(y[known], head.within(X, days)[known]) <= 0.01, days
    best = concordance(test["true_p_sql"].to_numpy(), truth)  # the generator's own risk ranks best
    assert concordance(head.within(X, 90), truth) > best - 0.03, best


def test_the_median_day_of_one_lead_is_the_vector_paths() -> None:
    """The service's one-lead path (plain Python) and the batch path (numpy) give the same day."""
    from leadscore.scoring.time_head import SMALL, _median_one, median_from

    rng = np.random.default_rng(0)
    cum = 1 - np.cumprod(1 - rng.uniform(0, 0.5, size=(5000, len(INTERVALS) - 1)), axis=1)
    batch = median_from(cum)
    assert len(cum) > SMALL and np.isnan(batch).any() and (~np.isnan(batch)).any()
    one_by_one = np.concatenate([median_from(cum[i : i + 1]) for i in range(len(cum))])
    np.testing.assert_allclose(one_by_one, batch, rtol=0, atol=1e-9)
    assert np.isnan(_median_one([0.1, 0.2, 0.3, 0.4, 0.45]))  # below one half at 90 days: "over 90"
