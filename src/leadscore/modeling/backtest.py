"""A backtest month by month: would the model have worked, trained only on what was known then?

For each month: train with what was known on its first day (labels whose windows had closed by
then, stage changes up to then, only leads scored before it), score that month's leads, and judge
them once their windows have closed (on the export's own day): leads, ROC AUC, ECE, MQL volume and
MQL->SQL rate against the contract's promise, next to the written points model on the same leads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.errors import UserError
from leadscore.features import dates_ms
from leadscore.modeling.dataset import read_training_data
from leadscore.modeling.evaluate import cutoff_outcome, expected_calibration_error, rate_at_volume
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.points import load_rules
from leadscore.spec import DatasetSpec

EVERY = ("month",)


@dataclass(frozen=True)
class Month:
    """One month of the backtest: its first day and the first day of the next (epoch ms)."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def name(self) -> str:
        return self.start.strftime("%Y-%m")


def months(first: pd.Timestamp, last: pd.Timestamp) -> list[Month]:
    """The calendar months from the one holding ``first`` to the one holding ``last``."""
    starts = pd.date_range(first.to_period("M").to_timestamp(), last, freq="MS")
    return [Month(s, s + pd.offsets.MonthBegin(1)) for s in starts]


def backtest(
    folder: str | Path,
    spec: DatasetSpec,
    options: TrainOptions,
    *,
    every: str = "month",
    start: pd.Timestamp | None = None,
    stop: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """The month table (and what the outcomes were judged against): see the module's docstring."""
    if every not in EVERY:
        raise UserError(f"--every: '{every}' is not supported (use: {', '.join(EVERY)})")
    if not spec.time:
        raise UserError("spec key 'time': a backtest needs each lead's scoring time")
    # Each month is judged on p_sql (no time head to train) and reads the same tables (read once).
    options = replace(options, time_head=False, tables={})
    known = read_training_data(folder, spec, options.feedback, options.feedback_source, options.tables)
    when = pd.to_datetime(dates_ms(known.frame[spec.time]), unit="ms")
    window = pd.Timedelta(days=spec.label.within_days)
    first = start or (when.min() + window + pd.Timedelta(days=60)).normalize()
    last = stop or when.max()
    rows = [_month(folder, spec, options, known.frame, known.y, when, m) for m in months(first, last)]
    return {
        "dataset": spec.name,
        "every": every,
        "cutoff_version": options.contract.version,
        "observed_until": known.windows.get("observed_until"),
        "matured_leads": int(len(known.y)),
        "months": rows,
    }


def _month(
    folder: str | Path,
    spec: DatasetSpec,
    options: TrainOptions,
    frame: pd.DataFrame,
    y: np.ndarray,
    when: pd.DatetimeIndex,
    month: Month,
) -> dict[str, Any]:
    """Train as of the month's first day, then judge its matured leads."""
    inside = np.asarray((when >= month.start) & (when < month.end), dtype=bool)
    row: dict[str, Any] = {"month": month.name, "matured_leads": int(inside.sum())}
    as_of = spec.model_copy(
        update={"observed_until": (month.start - pd.Timedelta(milliseconds=1)).to_pydatetime()}
    )
    try:
        result = train_model(folder, as_of, options)
    except UserError as exc:
        return {**row, "trained": False, "why": str(exc)}
    bundle = result.bundle
    row.update(
        {
            "trained": True,
            "trained_on": result.n_train + result.n_valid + result.n_test,  # every labelled lead known then
            "threshold": bundle.threshold,
            "promised_mql_sql_rate": bundle.meta.cutoff.promised_sql_rate,
        }
    )
    if not inside.any():
        return row
    leads, outcome = frame.loc[inside].reset_index(drop=True), y[inside]
    scored = bundle.score_frame(leads)
    row.update(_judged(outcome, scored.p_sql, scored.mql, bundle.threshold))
    row.update(_points(spec, leads, outcome, int(scored.mql.sum())))
    return row


def _judged(y: np.ndarray, p: np.ndarray, mql: np.ndarray, threshold: float) -> dict[str, Any]:
    both = len(np.unique(y)) == 2
    out = cutoff_outcome(y, p, threshold)
    return {
        "sql": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "ece": expected_calibration_error(y, p),
        "mql": int(mql.sum()),
        "mql_share": out["mql_share"],
        "mql_sql_rate": out["sql_rate"] if mql.any() else None,
        "mean_p_sql": float(np.mean(p)),
        "sql_rate": float(np.mean(y)),
    }


def _points(spec: DatasetSpec, leads: pd.DataFrame, y: np.ndarray, volume: int) -> dict[str, Any]:
    """The written points model on the same leads: its own MQL flag, and its rate at the model's volume."""
    scored = load_rules(spec.rules or "b2b-default").score(leads)
    points, flag = scored["points"].to_numpy(dtype=float), scored["mql"].to_numpy(dtype=bool)
    both = len(np.unique(y)) == 2
    return {
        "points_roc_auc": float(roc_auc_score(y, points)) if both else None,
        "points_mql": int(flag.sum()),
        "points_mql_sql_rate": float(y[flag].mean()) if flag.any() else None,
        "points_sql_rate_at_same_volume": rate_at_volume(y, points, volume) if volume else None,
    }
