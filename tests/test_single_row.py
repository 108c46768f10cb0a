"""LightGBM's prepared single-row predictor gives what ``Booster.predict`` gives, row for row."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pytest

from leadscore.scoring.single_row import predict_one, single_row

KEYWORDS = {"raw": "raw_score", "leaf": "pred_leaf", "contrib": "pred_contrib"}


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3_000, 5))
    X[:, 3] = rng.integers(0, 12, 3_000)  # a categorical field
    X[rng.random(3_000) < 0.1, 1] = np.nan
    y = (X[:, 0] + np.sin(X[:, 3]) + rng.normal(size=3_000) > 0).astype(int)
    data = lgb.Dataset(X, y, categorical_feature=[3])
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 1}
    trained = lgb.train(params, data, num_boost_round=40)
    return lgb.Booster(model_str=trained.model_to_string())  # as a bundle holds it


@pytest.mark.parametrize("kind", ["raw", "leaf", "contrib"])
def test_each_kind_equals_booster_predict_on_one_row(booster: lgb.Booster, kind: str) -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 5))
    X[:, 3] = rng.integers(-1, 15, 200)  # unseen and negative categories too
    X[::4, 1] = np.nan
    for row in X:
        expected = np.asarray(booster.predict(row[None, :], **{KEYWORDS[kind]: True}))
        got = predict_one(booster, row, kind)  # type: ignore[arg-type]
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected)


def test_threads_sharing_one_prepared_predictor_each_get_their_own_rows(booster: lgb.Booster) -> None:
    X = np.random.default_rng(11).normal(size=(2_000, 5))
    expected = booster.predict(X, raw_score=True)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda row: float(predict_one(booster, row, "raw")[0]), X))
    assert np.array_equal(np.array(got), expected)


def test_a_booster_stopped_early_is_walked_to_its_best_iteration_as_predict_does() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2_000, 4))
    y = (X[:, 0] + rng.normal(size=2_000) > 0).astype(int)
    fit = lgb.Dataset(X[:1_500], y[:1_500])
    stop = lgb.Dataset(X[1_500:], y[1_500:], reference=fit)
    params = {"objective": "binary", "learning_rate": 0.5, "verbose": -1, "seed": 2}
    trained = lgb.train(
        params,
        fit,
        200,
        valid_sets=[stop],
        callbacks=[lgb.early_stopping(5, verbose=False)],
        keep_training_booster=True,  # keeps the trees past the best one
    )
    assert 0 < trained.best_iteration < trained.current_iteration()
    for kind in ("raw", "leaf", "contrib"):
        expected = np.asarray(trained.predict(X[:1], **{KEYWORDS[kind]: True}))
        assert np.array_equal(predict_one(trained, X[0], kind), expected)


def test_a_row_of_the_wrong_width_is_refused(booster: lgb.Booster) -> None:
    with pytest.raises(ValueError, match="expected 5 features, got 4"):
        single_row(booster, "raw")(np.zeros(4))
