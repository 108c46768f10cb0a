"""Boosters: LightGBM parameters for a shape, early stopping, the shape choice, holdout and cross-fitting."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from leadscore.features import FeatureEncoder
from leadscore.modeling.averaging import fit_seeds
from leadscore.modeling.options import (
    CAPACITY_TOLERANCE,
    FAST_GRADES_ROWS,
    SELECTION_ROWS,
    SELECTION_STOP_ROWS,
    Capacity,
    TrainOptions,
)
from leadscore.modeling.search import search_capacity

log = logging.getLogger(__name__)

# The cross-fitted final booster's trees: the folds' mean best count, a little longer for 25% more
# rows than each fold saw.
FINAL_ROUNDS = 1.1
# Rounds without a better validation loss before a fit stops. A large validation set's loss curve is
# smooth, and 50 rounds found the same best tree count as 100 for every shape at 1M leads (140,419
# validation leads) in 15-20% less time; below that the noisier curve keeps 100 (small exports'
# fits unchanged). docs/performance.md.
PATIENCE = 100
PATIENCE_LARGE = 50
LARGE_VALIDATION = 50_000


def lgb_params(n_fit: int, options: TrainOptions, enc: FeatureEncoder, capacity: Capacity) -> dict[str, Any]:
    # About 200-600 trees either way: exact reasons cost grows with trees (benchmarks/bench_service.py).
    lr = options.learning_rate or (0.05 if n_fit < 50_000 else 0.08)
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": lr,
        "num_leaves": capacity.num_leaves,
        "max_depth": capacity.max_depth,
        "min_data_in_leaf": max(20, min(200, n_fit // 1000)),
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "cat_smooth": 10.0,
        "cat_l2": 10.0,
        "min_data_per_group": 50,
        "max_cat_to_onehot": 4,
        "num_threads": options.num_threads,
        "seed": options.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    params.update(dict(capacity.extra))  # a searched shape's own learning rate, leaf size ...
    if capacity.group_pure:
        # Each tree uses fit fields only or engagement fields only: the fit and engagement parts
        # of a score are then exact, and cheap to read for every lead's grade.
        fit = [j for j, src in enumerate(enc.feature_fields) if enc.field(src).group == "fit"]
        eng = [j for j, src in enumerate(enc.feature_fields) if enc.field(src).group != "fit"]
        if fit and eng:
            params["interaction_constraints"] = [fit, eng]
    return params


def choose_capacity(
    X: np.ndarray,
    y: np.ndarray,
    fit_idx: np.ndarray,
    valid_idx: np.ndarray,
    enc: FeatureEncoder,
    options: TrainOptions,
    weight: np.ndarray | None = None,
) -> tuple[Capacity, dict[str, float]]:
    """The fixed shapes and the searched one, compared on validation leads: among those within
    ``CAPACITY_TOLERANCE`` of the best, the cheapest to explain (``weight``: the rows' weights in
    the fits, for a down-sampled table)."""
    if len(options.capacities) == 1:
        return options.capacities[0], {}
    rng = np.random.default_rng(options.seed)
    fit_rows = (
        np.sort(rng.choice(fit_idx, SELECTION_ROWS, replace=False))
        if len(fit_idx) > SELECTION_ROWS
        else fit_idx
    )
    searched = search_capacity(_scorer(X, y, enc, options, weight), fit_rows, valid_idx, options)
    candidates = (*options.capacities, *((searched,) if searched else ()))
    # each shape stops early on a sample of the validation leads (a large set's loss curve is smooth,
    # and scoring every one of them after every tree cost as much as the trees); its AUC is taken on all
    stop_rows = (
        np.sort(rng.choice(valid_idx, SELECTION_STOP_ROWS, replace=False))
        if len(valid_idx) > SELECTION_STOP_ROWS
        else valid_idx
    )
    scores: dict[str, float] = {}
    units: dict[str, float] = {}
    for cap in candidates:
        booster, scores[cap.name] = _fit_scored(
            X, y, enc, options, cap, fit_rows, valid_idx, len(fit_idx), weight, stop_rows
        )
        units[cap.name] = explain_units(booster)
        scores[f"{cap.name}_reason_ms"] = reason_cost_ms(booster, X[valid_idx])
    chosen = _prefer(candidates, scores, units, len(fit_idx) + len(valid_idx))
    log.debug("model shape %s (validation ROC AUC and reason cost %s)", chosen.name, scores)
    return chosen, {**scores, **_searched_params(searched)}


def _scorer(
    X: np.ndarray, y: np.ndarray, enc: FeatureEncoder, options: TrainOptions, weight: np.ndarray | None = None
) -> Callable[[Capacity, np.ndarray, np.ndarray], float]:
    """How the capacity search scores a shape: fit on some rows, stop early on others, their AUC."""

    def score(capacity: Capacity, fit_rows: np.ndarray, valid_rows: np.ndarray) -> float:
        return _fit_scored(X, y, enc, options, capacity, fit_rows, valid_rows, len(fit_rows), weight)[1]

    return score


def _fit_scored(
    X: np.ndarray,
    y: np.ndarray,
    enc: FeatureEncoder,
    options: TrainOptions,
    capacity: Capacity,
    fit_rows: np.ndarray,
    valid_rows: np.ndarray,
    n_fit: int,
    weight: np.ndarray | None = None,
    stop_rows: np.ndarray | None = None,
) -> tuple[lgb.Booster, float]:
    """A booster of this shape (parameters sized for ``n_fit`` rows) fitted on ``fit_rows``, stopped
    early on ``stop_rows`` (None: ``valid_rows``), and its ROC AUC on ``valid_rows``."""
    params = lgb_params(n_fit, options, enc, capacity)
    stop = valid_rows if stop_rows is None else stop_rows
    booster = fit_booster(X, y, fit_rows, stop, enc, params, options.max_rounds, weight)
    p = booster.predict(X[valid_rows], num_threads=options.num_threads)
    return booster, float(roc_auc_score(y[valid_rows], p))


def _searched_params(searched: Capacity | None) -> dict[str, float]:
    """The searched shape's parameters, reported with the trade-off."""
    if searched is None:
        return {}
    return {
        "searched_num_leaves": float(searched.num_leaves),
        "searched_max_depth": float(searched.max_depth),
        **{f"searched_{k}": float(v) for k, v in searched.extra},
    }


def explain_units(booster: lgb.Booster) -> float:
    """What exact reasons cost with this booster, counted rather than timed (so a choice made on it is
    the same on every run): the sum over trees of leaves x depth^2, TreeSHAP's own cost."""

    def depth(node: dict[str, Any]) -> int:
        if "left_child" not in node:  # a leaf
            return 0
        return 1 + max(depth(node["left_child"]), depth(node["right_child"]))

    total = 0.0
    for tree in booster.dump_model()["tree_info"]:
        d = depth(tree["tree_structure"])
        total += tree["num_leaves"] * max(d, 1) ** 2
    return total


def reason_cost_ms(booster: lgb.Booster, X: np.ndarray, rows: int = 256) -> float:
    """What exact reasons (TreeSHAP) cost per lead with this booster, measured on one thread."""
    sample = X[:rows]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        booster.predict(sample, pred_contrib=True, num_threads=1)
        best = min(best, time.perf_counter() - start)
    return round(1000 * best / max(len(sample), 1), 4)


@dataclass
class Fitted:
    """A trained booster and the scores it (or its fold models) gave leads it never trained on."""

    booster: lgb.Booster
    capacity: Capacity
    params: dict[str, Any]
    scores: dict[str, float]
    calib_rows: np.ndarray
    calib_raw: np.ndarray
    fold_aucs: list[float] | None = None
    rounds: int | None = None  # one fit's trees when the booster averages several (None: its own count)
    seeds: int = 1  # the fits with different seeds averaged into ``booster``


def _prefer(
    capacities: tuple[Capacity, ...], scores: dict[str, float], units: dict[str, float], n_rows: int
) -> Capacity:
    """Among the shapes within the tolerance of the best held-out AUC (``CAPACITY_TOLERANCE`` with at
    least ``FAST_GRADES_ROWS`` rows, else none), the one whose exact reasons cost least (counted in
    ``explain_units``); ties go to the earlier shape."""
    best = max(scores[c.name] for c in capacities)
    tolerance = CAPACITY_TOLERANCE if n_rows >= FAST_GRADES_ROWS else 0.0
    within = [c for c in capacities if scores[c.name] >= best - tolerance]
    return min(within, key=lambda c: (units[c.name], capacities.index(c)))


def fit_holdout(
    X: np.ndarray,
    y: np.ndarray,
    fit_idx: np.ndarray,
    valid_idx: np.ndarray,
    enc: FeatureEncoder,
    options: TrainOptions,
    capacity: Capacity | None,
    weight: np.ndarray | None = None,
) -> Fitted:
    """Fit on the older rows, stop early and calibrate on the validation rows (``weight``: the rows'
    weights in the fits, for a down-sampled table)."""
    scores: dict[str, float] = {}
    if capacity is None:
        capacity, scores = choose_capacity(X, y, fit_idx, valid_idx, enc, options, weight)
    params = lgb_params(len(fit_idx), options, enc, capacity)
    booster = fit_booster(X, y, fit_idx, valid_idx, enc, params, options.max_rounds, weight)
    raw = np.asarray(booster.predict(X[valid_idx], raw_score=True, num_threads=options.num_threads))
    return Fitted(booster, capacity, params, scores, valid_idx, raw)


def fit_crossfit(
    X: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    enc: FeatureEncoder,
    options: TrainOptions,
    capacity: Capacity | None,
    groups: np.ndarray | None = None,
) -> Fitted:
    """Five fold models give every training row an out-of-fold score (shape choice, calibration,
    cutoff); the final booster then learns from all rows, as CalibratedClassifierCV(ensemble=False),
    ``options.refit_seeds`` times with different seeds, averaged (``averaging.py``).
    ``groups``: rows of one lead (its scoring moments) stay in one fold."""
    if groups is None:
        folds = list(StratifiedKFold(5, shuffle=True, random_state=options.seed).split(rows, y[rows]))
    else:
        grouped = StratifiedGroupKFold(5, shuffle=True, random_state=options.seed)
        folds = list(grouped.split(rows, y[rows], groups[rows]))
    candidates = (capacity,) if capacity else options.capacities
    searched = None
    if capacity is None and len(candidates) > 1:  # the search proposes one more shape (first fold's split)
        inner_fit, inner_valid = folds[0]
        searched = search_capacity(_scorer(X, y, enc, options), rows[inner_fit], rows[inner_valid], options)
        candidates = (*candidates, *((searched,) if searched else ()))
    runs: dict[str, tuple[dict[str, Any], np.ndarray, list[int], list[float]]] = {}
    costs: dict[str, float] = {}
    units: dict[str, float] = {}
    for cap in candidates:
        params = lgb_params(int(0.8 * len(rows)), options, enc, cap)
        oof = np.zeros(len(rows))
        iters: list[int] = []
        aucs: list[float] = []
        for fit_pos, eval_pos in folds:
            model = fit_booster(X, y, rows[fit_pos], rows[eval_pos], enc, params, options.max_rounds)
            oof[eval_pos] = model.predict(X[rows[eval_pos]], raw_score=True, num_threads=options.num_threads)
            iters.append(model.best_iteration or model.current_iteration())
            aucs.append(float(roc_auc_score(y[rows[eval_pos]], oof[eval_pos])))
        runs[cap.name] = (params, oof, iters, aucs)
        costs[f"{cap.name}_reason_ms"] = reason_cost_ms(model, X[rows[eval_pos]])
        units[cap.name] = explain_units(model)
    scores = {name: float(np.mean(run[3])) for name, run in runs.items()}
    chosen = _prefer(candidates, scores, units, len(rows))
    params, oof, iters, aucs = runs[chosen.name]
    rounds = max(10, int(round(np.mean(iters) * FINAL_ROUNDS)))
    seeds = max(1, options.refit_seeds)
    booster = fit_seeds(
        lambda seed: fit_rounds(X, y, rows, enc, {**params, "seed": seed}, rounds), int(params["seed"]), seeds
    )
    report = {**scores, **costs, **_searched_params(searched)} if len(candidates) > 1 else {}
    return Fitted(booster, chosen, params, report, rows, oof, aucs, rounds, seeds)


def fit_booster(
    X: np.ndarray,
    y: np.ndarray,
    fit_rows: np.ndarray,
    stop_rows: np.ndarray,
    enc: FeatureEncoder,
    params: dict[str, Any],
    max_rounds: int,
    weight: np.ndarray | None = None,
) -> lgb.Booster:
    """Train on ``fit_rows``, stopping early on ``stop_rows`` (``weight``: every row's, or None)."""
    train_set = lgb.Dataset(
        X[fit_rows],
        y[fit_rows],
        weight=None if weight is None else weight[fit_rows],
        categorical_feature=enc.categorical_indices,
        feature_name=safe_names(enc.feature_names),
        free_raw_data=False,
    )
    stop_weight = None if weight is None else weight[stop_rows]
    valid_set = lgb.Dataset(X[stop_rows], y[stop_rows], weight=stop_weight, reference=train_set)
    return lgb.train(
        params,
        train_set,
        num_boost_round=max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(patience(len(stop_rows)), verbose=False)],
    )


def patience(n_stop: int) -> int:
    """Early stopping's patience for a validation set of ``n_stop`` rows."""
    return PATIENCE_LARGE if n_stop >= LARGE_VALIDATION else PATIENCE


def fit_rounds(
    X: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray | None,
    enc: FeatureEncoder,
    params: dict[str, Any],
    rounds: int,
    weight: np.ndarray | None = None,
) -> lgb.Booster:
    """Train on ``rows`` (None: every row, without a copy) for exactly ``rounds`` trees (no early
    stopping: the count is known); ``weight``: every row's, or None."""
    data = lgb.Dataset(
        X if rows is None else X[rows],
        y if rows is None else y[rows],
        weight=weight if weight is None or rows is None else weight[rows],
        categorical_feature=enc.categorical_indices,
        feature_name=safe_names(enc.feature_names),
    )
    return lgb.train(params, data, num_boost_round=rounds)


def safe_names(names: list[str]) -> list[str]:
    # LightGBM rejects some characters in feature names; keep them readable and unique.
    out = []
    for i, name in enumerate(names):
        cleaned = "".join(c if c.isalnum() or c in "_" else "_" for c in name)
        out.append(f"f{i}_{cleaned}"[:60])
    return out


def cv_aucs(
    X: np.ndarray, y: np.ndarray, enc: FeatureEncoder, params: dict[str, Any], rounds: int, seed: int
) -> list[float]:
    aucs = []
    for fit_idx, eval_idx in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y):
        model = fit_rounds(X, y, fit_idx, enc, params, max(rounds, 10))
        aucs.append(float(roc_auc_score(y[eval_idx], model.predict(X[eval_idx]))))
    return aucs


def auc_interval(aucs: list[float]) -> dict[str, Any]:
    """Mean fold ROC AUC with a 95% t interval (4 degrees of freedom for 5 folds)."""
    mean, sd = float(np.mean(aucs)), float(np.std(aucs, ddof=1))
    half = 2.776 * sd / np.sqrt(len(aucs))
    return {
        "folds": len(aucs),
        "roc_auc_folds": aucs,
        "roc_auc_mean": mean,
        "roc_auc_low": mean - half,
        "roc_auc_high": mean + half,
    }
