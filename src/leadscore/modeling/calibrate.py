"""Calibration: isotonic or sigmoid, chosen by Brier score on leads the booster never trained on."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

from leadscore.scoring.calibrator import Calibrator


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def fit_calibrator(kind: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit one calibrator on raw booster scores (log-odds) and 0/1 outcomes."""
    if kind == "sigmoid":
        lr = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
        lr.fit(raw.reshape(-1, 1), y)
        return Calibrator(kind="sigmoid", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    if kind == "isotonic":
        prob = _sigmoid(raw)
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(prob, y)
        x = np.asarray(iso.X_thresholds_, dtype=float)
        v = np.asarray(iso.y_thresholds_, dtype=float)
        return Calibrator(
            kind="isotonic", x=[round(float(a), 10) for a in x], y=[round(float(b), 10) for b in v]
        )
    raise ValueError(f"unknown calibration '{kind}'")


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
