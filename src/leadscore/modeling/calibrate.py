"""Calibration: centred isotonic (no ties) or sigmoid, chosen by Brier score on leads the booster never trained on."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

from leadscore.scoring.calibrator import Calibrator

BLEND = 1e-3  # share of the booster's own sigmoid in the isotonic map: strictly increasing, no ties


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def fit_calibrator(kind: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit one calibrator on raw booster scores (log-odds) and 0/1 outcomes."""
    if kind == "sigmoid":
        lr = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
        lr.fit(raw.reshape(-1, 1), y)
        return Calibrator(kind="sigmoid", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    if kind == "isotonic":
        return _isotonic(*isotonic_centres(_sigmoid(raw), y))
    raise ValueError(f"unknown calibration '{kind}'")


def isotonic_centres(prob: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression as knots at the centre of each pooled block, to interpolate between.

    Plain isotonic regression is a step function: thousands of leads share one probability and a
    queue sorted by P(SQL) is full of ties. Pooled blocks have strictly increasing values, so linear
    interpolation between their centres keeps the calibration and the booster's order.
    """
    order = np.argsort(prob, kind="stable")
    p_sorted, y_sorted = prob[order], np.asarray(y, dtype=float)[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit_transform(p_sorted, y_sorted)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
    sizes = np.diff(np.r_[starts, len(fitted)])
    centres = np.add.reduceat(p_sorted, starts) / sizes
    values = fitted[starts]
    keep = np.r_[True, np.diff(centres) > 0]  # centres of distinct blocks (ties in prob pooled already)
    return centres[keep], values[keep]


def choose_calibrator(raw: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[Calibrator, dict[str, float]]:
    """Pick isotonic or sigmoid by cross-validated Brier score, then refit it on all of ``raw``."""
    y = np.asarray(y, dtype=int)
    scores: dict[str, float] = {}
    folds = min(5, int(min(np.bincount(y, minlength=2))))
    for kind in ("isotonic", "sigmoid"):
        if folds < 2:
            scores[kind] = float("nan")
            continue
        losses = []
        for fit_idx, eval_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(raw, y):
            cal = fit_calibrator(kind, raw[fit_idx], y[fit_idx])
            losses.append(brier_score_loss(y[eval_idx], cal.apply(raw[eval_idx])))
        scores[kind] = float(np.mean(losses))
    # Isotonic overfits small calibration sets; it must win clearly there to be chosen.
    iso, sig = scores["isotonic"], scores["sigmoid"]
    best = "isotonic" if (not np.isnan(iso) and (np.isnan(sig) or iso < sig)) else "sigmoid"
    if len(y) < 1000 and best == "isotonic" and not iso < 0.995 * sig:
        best = "sigmoid"
    return fit_calibrator(best, raw, y), scores


def quantile_matched(raw: np.ndarray, p_target: np.ndarray, knots: int = 512) -> Calibrator:
    """A calibrator that gives the raw scores ``raw`` the distribution of the calibrated scores
    ``p_target`` (the same leads scored by a calibrated model of the same recipe that never trained
    on them): score quantile q maps to probability quantile q, linear between knots, strictly
    increasing (the booster's own sigmoid blended in, as for isotonic)."""
    levels = np.linspace(0.0, 1.0, knots)
    x = np.quantile(_sigmoid(np.asarray(raw, dtype=float)), levels)
    v = np.maximum.accumulate(np.quantile(np.asarray(p_target, dtype=float), levels))
    keep = np.r_[True, np.diff(x) > 0]
    return _isotonic(x[keep], v[keep])


def _isotonic(x: np.ndarray, v: np.ndarray) -> Calibrator:
    """An isotonic calibrator from its knots (on the raw probability) and their values, with the
    booster's own sigmoid blended in so the map is strictly increasing."""
    return Calibrator(
        kind="isotonic",
        x=[round(float(a), 12) for a in x],
        y=[round(float(b), 12) for b in v],
        blend=BLEND,
    )
