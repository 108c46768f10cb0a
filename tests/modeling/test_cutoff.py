"""The cutoff contract and the threshold it becomes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from leadscore.errors import UserError
from leadscore.modeling.cutoff import resolve_threshold
from leadscore.scoring.contract import CutoffContract, load_contract


def _contract(**kw: object) -> CutoffContract:
    base = {"version": "t1", "agreed_by": ["m", "s"], "agreed_on": "2026-01-01", "review_by": "2026-04-01"}
    return CutoffContract.model_validate({**base, **kw})


def test_min_sql_rate_takes_the_lowest_threshold_that_keeps_the_promise() -> None:
    p = np.array([0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01])
    # cumulative means from the top: .9, .7, .6, .525, .46, .4, .35, .30625
    threshold, notes = resolve_threshold(_contract(policy="min_sql_rate", min_sql_rate=0.35), p)
    assert threshold == 0.05 and notes == []
    threshold, _ = resolve_threshold(_contract(policy="min_sql_rate", min_sql_rate=0.30), p)
    assert threshold == 0.01  # everyone: the mean of all is still >= 30%
    threshold, _ = resolve_threshold(_contract(policy="min_sql_rate", min_sql_rate=0.61), p)
    assert threshold == 0.5


def test_min_sql_rate_handles_ties_as_one_step() -> None:
    p = np.array([0.6, 0.2, 0.2, 0.2, 0.2])
    threshold, _ = resolve_threshold(_contract(policy="min_sql_rate", min_sql_rate=0.3), p)
    assert threshold == 0.6  # including the tied 0.2s would drop the rate to 0.28


def test_unreachable_rate_says_so() -> None:
    threshold, notes = resolve_threshold(
        _contract(policy="min_sql_rate", min_sql_rate=0.9), np.array([0.2, 0.1])
    )
    assert threshold == 0.2 and "no threshold" in notes[0]


def test_capacity_policy_uses_weekly_volume() -> None:
    p = np.linspace(0, 1, 1001)
    threshold, _ = resolve_threshold(
        _contract(policy="mql_capacity", mql_capacity=100), p, weekly_volume=1000
    )
    assert (p >= threshold).mean() == pytest.approx(0.1, abs=0.002)
    with pytest.raises(UserError, match="weekly lead volume"):
        resolve_threshold(_contract(policy="mql_capacity", mql_capacity=100), p, weekly_volume=None)


def test_fixed_probability_is_taken_as_is() -> None:
    threshold, _ = resolve_threshold(_contract(policy="probability", probability=0.42), np.array([0.1]))
    assert threshold == 0.42


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"policy": "min_sql_rate"}, "needs the field"),
        ({"policy": "min_sql_rate", "min_sql_rate": 1.5}, "between 0 and 1"),
        ({"policy": "mql_capacity", "mql_capacity": -3}, "positive"),
        ({"policy": "probability", "probability": 0.3, "review_by": "2025-01-01"}, "before"),
    ],
)
def test_bad_contracts_are_rejected(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _contract(**kw)


def test_shipped_contract_loads_and_knows_when_review_is_due(tmp_path: Path) -> None:
    contract, path = load_contract("default")
    assert contract.policy == "min_sql_rate" and contract.min_sql_rate == 0.30
    assert contract.agreed_by and path.name == "default.yaml"
    assert contract.overdue(today=date(2030, 1, 1)) and not contract.overdue(today=contract.agreed_on)
    bad = tmp_path / "c.yaml"
    bad.write_text("version: x\npolicy: sometimes\n")
    with pytest.raises(UserError, match="c.yaml"):
        load_contract(bad)


def _leads(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 6.0, n)
    return (rng.random(n) < p).astype(float), p


def test_a_promise_the_threshold_does_not_keep_is_said_with_what_is_reachable() -> None:
    from leadscore.modeling.cutoff import cutoff_facts

    y, p = _leads(4000, 1)
    contract = _contract(policy="min_sql_rate", min_sql_rate=0.30)
    order = np.sort(p)[::-1]
    loose = float(order[int(0.3 * len(p))])  # 30% of leads: far below a 30% rate here
    facts = cutoff_facts(contract, y, p, None, loose, weekly=100.0)
    assert facts.expected_sql_rate is not None and facts.expected_sql_rate < 0.30
    said = " ".join(facts.warnings)
    assert "does not keep the contract's MQL->SQL rate of 30%" in said
    assert "it is kept up to" in said and "per week" in said
    kept_share = float(said.split("it is kept up to ")[1].split("%")[0]) / 100
    top = np.sort(p)[::-1][: round(kept_share * len(p))]
    assert y[p >= top.min()].mean() >= 0.30  # the volume named really keeps the rate
    strict = float(order[int(0.05 * len(p))])
    assert cutoff_facts(contract, y, p, None, strict, weekly=100.0).warnings == []  # kept: nothing said


def test_a_bar_that_is_too_loose_is_said_whatever_the_policy() -> None:
    from leadscore.modeling.cutoff import cutoff_facts

    y, p = _leads(4000, 2)
    capacity = _contract(policy="mql_capacity", mql_capacity=60.0)
    facts = cutoff_facts(capacity, y, p, None, float(np.quantile(p, 0.4)), weekly=100.0)
    said = " ".join(facts.warnings)
    assert "of leads become MQL (over 40%)" in said and "below 20%" in said
    assert "does not keep" not in said  # a capacity contract promises no rate
    y1 = np.zeros(30)
    y1[:5] = 1
    few = cutoff_facts(
        _contract(policy="min_sql_rate", min_sql_rate=0.9), y1, np.linspace(1, 0, 30), None, 0.5, None
    )
    assert any("best reachable with at least 20 MQLs" in w for w in few.warnings)
