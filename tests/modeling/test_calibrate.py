"""Calibration choice and the calibration metrics."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.modeling.calibrate import choose_calibrator, fit_calibrator
from leadscore.modeling.evaluate import (
    binary_metrics,
    cutoff_outcome,
    expected_calibration_error,
    lift_top_decile,
)


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
    assert expected_calibration_error(y, p) < 0.01


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
