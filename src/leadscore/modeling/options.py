"""How to train: the model shapes to try, the contract, the columns to keep, the seed and threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from leadscore.config import get_settings
from leadscore.scoring.contract import CutoffContract


@dataclass(frozen=True)
class Capacity:
    """A model shape: tree size and whether each tree keeps to fit or to engagement fields."""

    name: str
    num_leaves: int
    max_depth: int
    group_pure: bool
    extra: tuple[tuple[str, Any], ...] = ()  # searched LightGBM parameters (learning rate, leaf size ...)


# Candidates, compared on held-out ROC AUC (validation rows, or out-of-fold when cross-fitted).
# Group-pure shallow trees come first and are kept unless another shape is clearly better: their
# fit and engagement parts are exact and cheap to read for every lead (grades at batch speed, see
# benchmarks/bench_service.py), and exact reasons stay cheap. `--capacity` forces a shape.
CAPACITIES = (
    Capacity("group-pure-d3", 7, 3, True),
    Capacity("shallow-d3", 7, 3, False),
    Capacity("deeper-d6", 31, 6, False),
)
# With at least FAST_GRADES_ROWS rows, among shapes within CAPACITY_TOLERANCE held-out ROC AUC of
# the best, the cheapest to explain is chosen (ties: the earlier shape, group-pure first: exact,
# fast grades). With less data the best held-out AUC wins: its estimate is noisier than 0.002, and
# taking a cheaper shape on that noise cost X Education 0.004 of test AUC (benchmarks/quality_real.py).
CAPACITY_TOLERANCE = 0.002
FAST_GRADES_ROWS = 100_000
CROSSFIT_MAX_ROWS = 100_000  # up to this many training rows without a time column: cross-fit
SELECTION_ROWS = 100_000
SELECTION_STOP_ROWS = 50_000  # the shapes compared stop early on at most this many validation leads
# A cross-fitted (small) export's final booster averages this many fits with different seeds: their
# bagging draws differ, and the average varies less from one draw to the next (+0.00026 ROC AUC a
# split over 20 hidden X Education splits for three; every lead's reasons walk three times the
# trees, still well under a millisecond at this size). docs/performance.md, "Seed-averaged refits".
REFIT_SEEDS = 3


@dataclass
class TrainOptions:
    """How to train: the contract, columns to keep despite the leakage guard, seed, threads."""

    contract: CutoffContract
    keep: list[str] = field(default_factory=list)
    seed: int = 42
    feedback: pd.DataFrame | None = None  # sales' decisions (lead_id, decision, decided_at) as labels
    feedback_source: str = "the feedback store"  # where they came from, for the run's notes
    # LightGBM's threads: LEADSCORE_NUM_THREADS unless given (two processes training side by side
    # with two threads each on two cores took five times as long)
    num_threads: int = field(default_factory=lambda: get_settings().num_threads)
    max_rounds: int = 3000
    learning_rate: float | None = None
    capacities: tuple[Capacity, ...] = CAPACITIES
    search_trials: int | None = None  # the capacity search's trials (None: by its row budget; 0: off)
    sample: int | None = None  # train on at most this many leads (--sample; modeling/sampling.py)
    finalize: bool = True  # ship the evaluated recipe refitted on every labelled lead (--no-finalize: off)
    refit_seeds: int = (
        REFIT_SEEDS  # a cross-fitted final booster: this many seeds' fits averaged (--refit-seeds)
    )
    time_head: bool = True  # learn time to SQL where the export says when (off in a backtest: never read)
    # a folder's declared tables (activity log, status history) as read once: a backtest's months share them
    tables: dict[str, tuple[pd.DataFrame, str]] | None = None
