"""Boosters: early stopping's patience by the size of the validation set; the shapes compared."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score

from leadscore.modeling import boosters
from leadscore.modeling.boosters import LARGE_VALIDATION, PATIENCE, PATIENCE_LARGE, fit_booster, patience
from leadscore.modeling.options import Capacity, TrainOptions
from leadscore.scoring.contract import load_contract


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


def test_shapes_compared_stop_early_on_a_sample_and_are_judged_on_every_validation_lead(monkeypatch) -> None:
    """The shape choice's fits stop early on at most SELECTION_STOP_ROWS validation leads (scoring a
    large set after every tree cost as much as the trees), and each shape's AUC is on all of them."""
    monkeypatch.setattr(boosters, "SELECTION_STOP_ROWS", 500)
    stops: list[int] = []
    fitted: list[lgb.Booster] = []
    real_fit = boosters.fit_booster

    def recording(X, y, fit_rows, stop_rows, *args, **kwargs):
        stops.append(len(stop_rows))
        fitted.append(real_fit(X, y, fit_rows, stop_rows, *args, **kwargs))
        return fitted[-1]

    monkeypatch.setattr(boosters, "fit_booster", recording)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5_000, 3))
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-2 * X[:, 0] + X[:, 1]))).astype(int)
    enc = type("Enc", (), {"categorical_indices": [], "feature_names": ["a", "b", "c"]})()
    shapes = (Capacity("small", 4, 2, False), Capacity("larger", 15, 4, False))
    options = TrainOptions(contract=load_contract()[0], capacities=shapes, search_trials=0, num_threads=1)
    valid = np.arange(3_000, 5_000)
    _, scores = boosters.choose_capacity(X, y, np.arange(3_000), valid, enc, options)
    assert stops == [500, 500]
    for shape, booster in zip(shapes, fitted, strict=True):
        assert scores[shape.name] == roc_auc_score(y[valid], booster.predict(X[valid], num_threads=1))
