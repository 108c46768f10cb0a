"""Calibration choice and the calibration metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from leadscore.modeling.calibrate import choose_calibrator, fit_calibrator
from leadscore.modeling.cutoff import promise_interval, resolve_threshold
from leadscore.modeling.evaluate import (
    binary_metrics,
    cutoff_outcome,
    expected_calibration_error,
    lift_top_decile,
)
from leadscore.scoring.contract import CutoffContract, load_contract


def test_ece_by_hand() -> None:
    y = np.array([1, 0, 0, 0, 1, 1])
    p = np.array([0.02, 0.02, 0.02, 0.02, 0.98, 0.98])
    # bin 0: predicted 0.02, observed 0.25 (4 leads); bin 14: predicted 0.98, observed 1 (2 leads)
    assert expected_calibration_error(y, p) == pytest.approx(4 / 6 * 0.23 + 2 / 6 * 0.02)


def test_sigmoid_wins_when_the_truth_is_a_sigmoid_of_the_raw_score() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 * raw - 1)))).astype(int)
    cal, scores = choose_calibrator(raw, y)
    assert cal.kind == "sigmoid"
    assert cal.a == pytest.approx(0.5, abs=0.08) and cal.b == pytest.approx(-1, abs=0.15)
    assert scores["sigmoid"] <= scores["isotonic"]


def test_isotonic_wins_when_the_link_is_not_a_sigmoid() -> None:
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, 20000)
    truth = np.where(raw > 0, 0.6, 0.05)  # a step no sigmoid can follow
    y = (rng.random(20000) < truth).astype(int)
    cal, _ = choose_calibrator(raw, y)
    assert cal.kind == "isotonic"
    p = cal.apply(raw)
    # A step no smooth map follows exactly: interpolating between block centres (to keep the
    # booster's order) costs a little calibration right at the step.
    assert expected_calibration_error(y, p) < 0.015


def test_calibrators_map_to_probabilities_monotonically() -> None:
    rng = np.random.default_rng(2)
    raw = rng.normal(0, 1, 2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-raw))).astype(int)
    grid = np.linspace(-6, 6, 200)
    for kind in ("isotonic", "sigmoid"):
        out = fit_calibrator(kind, raw, y).apply(grid)
        assert ((out >= 0) & (out <= 1)).all() and (np.diff(out) >= -1e-12).all()


def test_metrics_and_cutoff_outcome() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.7, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    m = binary_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(15 / 16)
    out = cutoff_outcome(y, p, 0.6)
    assert out["mql_count"] == 3 and out["sql_rate"] == pytest.approx(2 / 3) and out["recall"] == 1.0
    assert lift_top_decile(y, p) == pytest.approx(5.0)


def test_isotonic_calibration_keeps_the_boosters_order() -> None:
    rng = np.random.default_rng(6)
    raw = rng.normal(-2, 1.5, 40_000)
    y = (rng.random(40_000) < 1 / (1 + np.exp(-(0.8 * raw - 0.3)))).astype(int)
    cal = fit_calibrator("isotonic", raw[:20_000], y[:20_000])
    test_raw, test_y = raw[20_000:], y[20_000:]
    p = cal.apply(test_raw)
    assert len(np.unique(p)) == len(np.unique(test_raw))  # ties only where the booster ties
    assert abs(roc_auc_score(test_y, p) - roc_auc_score(test_y, test_raw)) < 0.0005
    assert (np.diff(cal.apply(np.linspace(-12, 12, 5000))) > 0).all()  # strictly increasing, tails too
    assert expected_calibration_error(test_y, p) < 0.01


def test_a_contract_with_a_confidence_chooses_a_safer_threshold() -> None:
    rng = np.random.default_rng(7)
    p = rng.beta(1, 8, 6000)
    y = (rng.random(6000) < p).astype(float)
    base = load_contract()[0]

    def threshold(confidence: float) -> float:
        contract = CutoffContract.model_validate({**base.model_dump(), "confidence": confidence})
        value, notes = resolve_threshold(contract, p, y=y)
        assert not notes
        return value

    sure, surer = threshold(0.9), threshold(0.99)
    assert surer > sure  # more confidence, a stricter bar
    assert y[p >= sure].mean() >= 0.30
    lo, hi = promise_interval(p, y, sure, level=0.8)["sql_rate"]  # its lower 10% is the promise
    assert lo == pytest.approx(0.30, abs=0.01) and lo < y[p >= sure].mean() < hi
    with pytest.raises(ValueError, match="confidence"):
        CutoffContract.model_validate({**base.model_dump(), "confidence": 1.5})
