"""Metrics on held-out leads: discrimination, calibration, lift, and the MQL cutoff's effect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from leadscore.scoring.meta import CutoffFacts

ECE_BINS = 15


@dataclass
class Evaluation:
    """The model and its baselines on the same test rows, and what the cutoff means there."""

    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    cutoff: CutoffFacts
    y: np.ndarray
    p: np.ndarray
    points: np.ndarray | None
    X: np.ndarray
    uncertainty: dict[str, Any] | None


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over equal-width probability bins, weighted by the share of leads in each bin."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(total)


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per bin: mean predicted, observed rate, and count (for the reliability plot)."""
    idx = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            rows.append(
                {
                    "bin": b,
                    "predicted": float(p[mask].mean()),
                    "observed": float(y[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    return rows


def lift_top_decile(y: np.ndarray, score: np.ndarray, seed: int = 0) -> float:
    """SQL rate among the top 10% by score, over the overall rate (ties broken by a seeded draw)."""
    y = np.asarray(y, dtype=float)
    order = _rank_desc(score, seed)
    k = max(1, int(round(0.1 * len(y))))
    base = y.mean()
    return float(y[order[:k]].mean() / base) if base > 0 else float("nan")


def _rank_desc(score: np.ndarray, seed: int) -> np.ndarray:
    tiebreak = np.random.default_rng(seed).random(len(score))
    return np.lexsort((tiebreak, -np.asarray(score, dtype=float)))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier, log loss, ECE and top-decile lift."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": lift_top_decile(y, p),
    }


def cutoff_outcome(y: np.ndarray, p: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    """What the cutoff does on these leads: MQL share, MQL->SQL rate and recall, observed and expected
    (``threshold``: one for all, or each lead's own, as a routing bundle's segments have)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    mql = p >= threshold
    n_mql = int(mql.sum())
    return {
        "mql_share": float(mql.mean()),
        "mql_count": n_mql,
        "sql_rate": float(y[mql].mean()) if n_mql else 0.0,
        "recall": float(y[mql].sum() / y.sum()) if y.sum() else 0.0,
        "expected_sql_rate": float(p[mql].mean()) if n_mql else 0.0,
        "expected_recall": float(p[mql].sum() / p.sum()) if p.sum() else 0.0,
    }


def rate_at_volume(y: np.ndarray, score: np.ndarray, count: int, seed: int = 0) -> float:
    """MQL->SQL rate of the ``count`` best leads by ``score`` (the points model at the same volume)."""
    if count <= 0:
        return 0.0
    order = _rank_desc(score, seed)
    return float(np.asarray(y, dtype=float)[order[:count]].mean())


def gains_curve(
    y: np.ndarray, score: np.ndarray, points: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Share of leads contacted (x) against share of SQLs found (y), best-scored first."""
    y = np.asarray(y, dtype=float)
    order = _rank_desc(score, seed)
    found = np.cumsum(y[order]) / max(y.sum(), 1.0)
    xs = np.linspace(0, 1, points + 1)
    idx = np.clip((xs * len(y)).astype(int) - 1, 0, len(y) - 1)
    ys = np.where(xs == 0, 0.0, found[idx])
    return xs, ys


BASELINE_NAMES = {
    "logistic_regression": "logistic regression",
    "plain_lightgbm": "a plain LightGBM",
    "points_model": "the written points model",
}


def baseline_warnings(metrics: dict[str, float], baselines: dict[str, dict[str, float]]) -> list[str]:
    """Said plainly in ``train`` and on the card: a baseline that ranks the test leads better."""
    ours = metrics.get("roc_auc")
    said = []
    for name, theirs in baselines.items():
        auc = theirs.get("roc_auc")
        if ours is not None and auc is not None and auc > ours:
            said.append(
                f"warning: the model's test ROC AUC {ours:.3f} is below {BASELINE_NAMES.get(name, name)}'s "
                f"{auc:.3f} on the same test leads: check the fields it learned from and the data's "
                "problems before trusting it"
            )
    return said
