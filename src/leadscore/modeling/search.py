"""A data-chosen model shape: an Optuna search over the booster's capacity, proposing one more
candidate for the shape choice.

The search fits on the training rows and stops early on validation rows, never on the test rows.
Its budget is counted in rows fitted, not seconds, so the same seed gives the same model on any
machine: ``SEARCH_ROW_BUDGET`` rows in all, at most ``SEARCH_MAX_TRIALS`` trials, each on at most
``SEARCH_ROWS`` rows (fitting cost grows with rows, so a large export gets three trials on a sample
and the 1M-lead training stays within its two minutes).
The best searched shape then competes with the fixed ones on the same held-out AUC; among those
within ``CAPACITY_TOLERANCE`` of the best, the cheapest to explain wins (exact reasons cost grows
with trees x leaves x depth^2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from leadscore.modeling.options import Capacity, TrainOptions

log = logging.getLogger(__name__)

SEARCH_ROW_BUDGET = 150_000  # rows fitted by the search in all
SEARCH_MAX_TRIALS = 10
SEARCH_ROWS = 50_000  # the search fits on at most this many rows (and stops early on as many)
SEARCHED = "searched"


def search_trials(n_fit_rows: int, options: TrainOptions) -> int:
    """How many trials the search gets: the options' number, else ``LEADSCORE_SEARCH_TRIALS``, else
    the row budget over the rows it fits on."""
    from leadscore.config import get_settings

    stated = options.search_trials if options.search_trials is not None else get_settings().search_trials
    if stated is not None:
        return max(0, stated)
    return int(min(SEARCH_MAX_TRIALS, SEARCH_ROW_BUDGET // max(n_fit_rows, 1)))


def search_capacity(
    score: Callable[[Capacity, np.ndarray, np.ndarray], float],
    fit_rows: np.ndarray,
    valid_rows: np.ndarray,
    options: TrainOptions,
) -> Capacity | None:
    """The best shape a seeded TPE search finds (None when it gets no trials). ``score(shape, fit,
    valid)`` fits a booster of that shape on the fit rows, stopping early on the valid rows, and
    returns its validation ROC AUC."""
    rng = np.random.default_rng(options.seed)
    if len(fit_rows) > SEARCH_ROWS:
        fit_rows = np.sort(rng.choice(fit_rows, SEARCH_ROWS, replace=False))
    if len(valid_rows) > SEARCH_ROWS:
        valid_rows = np.sort(rng.choice(valid_rows, SEARCH_ROWS, replace=False))
    trials = search_trials(len(fit_rows), options)
    if trials == 0:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = Capacity(SEARCHED, 31, 6, False)
    upper_leaf = max(10, min(500, len(fit_rows) // 20))

    def objective(trial: optuna.Trial) -> float:
        depth = trial.suggest_int("max_depth", 3, 8)
        extra = {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, min(63, 2**depth)),
            "max_depth": depth,
            "min_data_in_leaf": trial.suggest_int(
                "min_data_in_leaf", min(10, upper_leaf), upper_leaf, log=True
            ),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 50.0, log=True),
            "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
        }
        return score(_with(base, extra), fit_rows, valid_rows)

    sampler = optuna.samplers.TPESampler(seed=options.seed, n_startup_trials=min(4, trials))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=trials, n_jobs=1, gc_after_trial=False)
    best = study.best_trial
    log.debug(
        "capacity search: %d trials, best validation ROC AUC %.4f with %s", trials, best.value, best.params
    )
    return _with(base, dict(best.params))


def _with(base: Capacity, extra: dict[str, Any]) -> Capacity:
    """A shape with searched parameters (leaves and depth from them)."""
    return Capacity(
        base.name,
        int(extra.get("num_leaves", base.num_leaves)),
        int(extra.get("max_depth", base.max_depth)),
        base.group_pure,
        tuple(sorted((k, v) for k, v in extra.items() if k not in ("num_leaves", "max_depth"))),
    )
