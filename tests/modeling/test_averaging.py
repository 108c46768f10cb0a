"""A small export's shipped booster: several seeds' fits averaged into one booster."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from leadscore.modeling.averaging import averaged, fit_seeds
from leadscore.modeling.finalize import learned_line
from leadscore.modeling.options import CAPACITIES, TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.contract import load_contract
from leadscore.spec import spec_from_flags
from tests.helpers import make_leads


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 4))
    X[:, 3] = rng.integers(0, 12, 3000)  # a categorical field with many values (set splits)
    X[rng.random(3000) < 0.1, 1] = np.nan
    y = (X[:, 0] + 0.6 * (X[:, 3] % 3 == 0) + rng.normal(size=3000) > 0.3).astype(int)
    return X, y


def _fit(X: np.ndarray, y: np.ndarray, seed: int, rounds: int = 40) -> lgb.Booster:
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "feature_fraction": 0.8,
        "max_cat_to_onehot": 4,
        "min_data_per_group": 20,
        "seed": seed,
        "deterministic": True,
        "verbose": -1,
    }
    return lgb.train(params, lgb.Dataset(X, y, categorical_feature=[3]), rounds)


def test_the_average_of_boosters_is_one_booster_with_their_mean_scores_and_contributions() -> None:
    X, y = _data()
    fits = [_fit(X, y, seed) for seed in (1, 2, 3)]
    assert len({b.model_to_string() for b in fits}) == 3  # the seeds' bagging draws differ
    mean = averaged(fits)
    assert mean.num_trees() == 120
    raw = np.mean([b.predict(X, raw_score=True) for b in fits], axis=0)
    np.testing.assert_allclose(mean.predict(X, raw_score=True), raw, rtol=0, atol=1e-12)
    contrib = np.mean(
        [b.predict(X, pred_contrib=True) for b in fits], axis=0
    )  # TreeSHAP reads internal values
    np.testing.assert_allclose(mean.predict(X, pred_contrib=True), contrib, rtol=0, atol=1e-12)
    # a saved and reloaded average is the same model, byte for byte
    text = mean.model_to_string()
    assert lgb.Booster(model_str=text).model_to_string() == text
    assert averaged(fits).model_to_string() == text  # deterministic
    assert averaged(fits[:1]) is fits[0]


def test_fit_seeds_fits_with_consecutive_seeds() -> None:
    X, y = _data(1)
    seen: list[int] = []

    def fit(seed: int) -> lgb.Booster:
        seen.append(seed)
        return _fit(X, y, seed, rounds=5)

    assert fit_seeds(fit, 7, 3).num_trees() == 15 and seen == [7, 8, 9]
    assert fit_seeds(fit, 7, 0).num_trees() == 5  # at least one fit


def test_linear_trees_are_refused() -> None:
    X, y = _data(2)
    X = np.nan_to_num(X)
    params = {"objective": "binary", "linear_tree": True, "verbose": -1, "seed": 1}
    linear = [lgb.train({**params, "seed": s}, lgb.Dataset(X[:, :3], y), 3) for s in (1, 2)]
    with pytest.raises(ValueError, match="linear trees"):
        averaged(linear)


def test_a_small_exports_shipped_booster_averages_three_seeds(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    leads = make_leads(2000, 21, fault_rate=0.0)
    leads.drop(columns=["scored_at", "true_p_sql", "true_days_to_sql"]).to_csv(path, index=False)
    spec = spec_from_flags("flat", "sql_within_90d", None, "lead_id")

    def options(seeds: int) -> TrainOptions:
        return TrainOptions(
            contract=load_contract()[0], capacities=(CAPACITIES[1],), search_trials=0, refit_seeds=seeds
        )

    three, one = train_model(path, spec, options(3)), train_model(path, spec, options(1))
    learned = three.bundle.meta.learned_from
    assert learned is not None and one.bundle.meta.learned_from is not None
    assert learned["seeds"] == 3 and one.bundle.meta.learned_from["seeds"] == 1
    assert three.params["refit_seeds"] == 3 and one.params["refit_seeds"] == 1  # logged to MLflow
    # the same folds and tree count, fitted three times: three times the trees, reported as such
    assert three.bundle.booster.num_trees() == 3 * one.bundle.booster.num_trees() == learned["trees"]
    assert f"{learned['trees']} trees (3 fits with different seeds averaged)" in learned_line(learned)
    # the average is scored, calibrated and reasoned as one booster
    answers, _ = three.bundle.answers(three.test_frame.head(50).to_dict("records"))
    assert all(a["reasons"]["positive"] or a["reasons"]["negative"] for a in answers)
    assert len({a["p_sql"] for a in answers}) > 40
