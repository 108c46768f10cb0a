"""Baselines on the same test rows: logistic regression and the written points model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from leadscore.errors import UserError
from leadscore.modeling.evaluate import binary_metrics
from leadscore.scoring.points import PointsModel, load_rules
from leadscore.spec import DatasetSpec


def fit_logistic(
    X: np.ndarray, y: np.ndarray, categorical: list[int], seed: int, weight: np.ndarray | None = None
) -> Pipeline:
    """The logistic-regression baseline: one-hot categories, scaled numbers with missing flags
    (``weight``: the rows' weights, for a down-sampled table)."""
    numeric = [j for j in range(X.shape[1]) if j not in set(categorical)]
    pre = ColumnTransformer(
        [
            (
                "num",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                        ),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            ),
            (
                "cat",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True),
                        ),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=5)),
                    ]
                ),
                categorical,
            ),
        ]
    )
    model = Pipeline([("pre", pre), ("lr", LogisticRegression(C=0.5, max_iter=2000))])
    if len(y) > 200_000:
        keep = np.random.default_rng(seed).choice(len(y), 200_000, replace=False)
        X, y, weight = X[keep], y[keep], None if weight is None else weight[keep]
    model.fit(X, y, lr__sample_weight=weight)
    return model


PLAIN_LIGHTGBM: dict[str, Any] = {
    "objective": "binary",
    "n_estimators": 400,
    "learning_rate": 0.03,
    "num_leaves": 31,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "cat_smooth": 10,
    "min_data_per_group": 50,
    "verbose": -1,
}
PLAIN_MAX_ROWS = 200_000


def plain_lightgbm(
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    categorical: list[int],
    seed: int,
    threads: int,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """A careful plain LightGBM (the configuration a data scientist reaches for first), with the same
    fields, categories, training rows and row weights as the model: the bar the model must clear."""
    import lightgbm as lgb

    if len(y) > PLAIN_MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), PLAIN_MAX_ROWS, replace=False))
        X, y, weight = X[keep], y[keep], None if weight is None else weight[keep]
    model = lgb.LGBMClassifier(**PLAIN_LIGHTGBM, random_state=seed, n_jobs=threads)
    model.fit(X, y, sample_weight=weight, categorical_feature=categorical or "auto")
    proba: Any = model.predict_proba(X_test)
    return np.asarray(proba)[:, 1]


def points_baseline(
    spec: DatasetSpec,
    frame: pd.DataFrame,
    y: np.ndarray,
    fit_idx: np.ndarray,
    test_idx: np.ndarray,
    baselines: dict[str, dict[str, float]],
    weight: np.ndarray | None = None,
) -> np.ndarray | None:
    """The written points model on the same test rows (where its fields exist), calibrated on fit rows
    (``weight``: the rows' weights, for a down-sampled table)."""
    points = points_scores(spec, frame)
    if points is None:
        return None
    fit_weight = None if weight is None else weight[fit_idx]
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
    iso.fit(points[fit_idx], y[fit_idx], sample_weight=fit_weight)
    baselines["points_model"] = binary_metrics(y[test_idx], iso.predict(points[test_idx]))
    baselines["points_model"]["roc_auc"] = float(roc_auc_score(y[test_idx], points[test_idx]))
    return points[test_idx]


def points_scores(spec: DatasetSpec, frame: pd.DataFrame) -> np.ndarray | None:
    """Every lead's points under the spec's written rules, or None where the rules' fields are missing."""
    try:
        rules: PointsModel = load_rules(spec.rules or "b2b-default")
    except UserError:
        return None
    if not rules.available(frame.columns):
        return None
    return np.asarray(rules.score(frame)["points"].to_numpy())
