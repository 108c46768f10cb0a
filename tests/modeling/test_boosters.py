"""Boosters: early stopping's patience by the size of the validation set."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from leadscore.modeling.boosters import LARGE_VALIDATION, PATIENCE, PATIENCE_LARGE, fit_booster, patience


def test_patience_is_shorter_only_for_a_large_validation_set() -> None:
    assert patience(LARGE_VALIDATION - 1) == PATIENCE == 100
    assert patience(LARGE_VALIDATION) == PATIENCE_LARGE == 50


def test_a_fit_stops_after_its_patience_without_a_better_validation_loss(monkeypatch) -> None:
    """The rounds trained past the best are the patience for that validation set's size."""
    trained: list[int] = []
    real_train = lgb.train

    def counting(*args, **kwargs):
        kwargs["keep_training_booster"] = True  # keep the rounds past the best, to count them
        booster = real_train(*args, **kwargs)
        trained.append(booster.current_iteration() - booster.best_iteration)
        return booster

    monkeypatch.setattr(lgb, "train", counting)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(LARGE_VALIDATION + 2_000, 2))
    y = (rng.random(len(X)) < 0.3).astype(int)  # noise: the best round comes early
    enc = type("Enc", (), {"categorical_indices": [], "feature_names": ["a", "b"]})()
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": 1, "num_threads": 1}
    fit = np.arange(2_000)
    fit_booster(X, y, fit, np.arange(2_000, 2_000 + LARGE_VALIDATION), enc, params, 1_000)
    fit_booster(X, y, fit, np.arange(2_000, 12_000), enc, params, 1_000)
    assert trained == [PATIENCE_LARGE, PATIENCE]
