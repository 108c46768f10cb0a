"""Outcomes: calibration, ROC AUC and the MQL->SQL rate where recent outcomes are known, and sources
ranked by their share of SQLs. Judged against the recent sample's own uncertainty."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.data.validate import label_values
from leadscore.modeling.evaluate import expected_calibration_error
from leadscore.scoring.bundle import ModelBundle

MIN_OUTCOMES = 200


def outcome_checks(
    bundle: ModelBundle, cur: pd.DataFrame, p: np.ndarray, mql: np.ndarray
) -> dict[str, Any] | None:
    """Calibration, ROC AUC and the MQL->SQL rate where the recent leads' outcomes are known."""
    if bundle.spec.label.column not in cur.columns:
        return None
    y, known = label_values(cur, bundle.spec)
    if known.sum() < MIN_OUTCOMES or len(np.unique(y[known])) < 2:
        return None
    y, p, mql = y[known].astype(float), p[known], mql[known]
    expected, observed = float(p.sum()), float(y.sum())
    var = float((p * (1 - p)).sum()) or 1.0
    cut = bundle.meta.cutoff
    promise = cut.contract.min_sql_rate or cut.expected_sql_rate
    rate = float(y[mql].mean()) if mql.any() else float("nan")
    n_mql = int(mql.sum())
    se = math.sqrt(max(rate * (1 - rate), 1e-9) / n_mql) if n_mql else float("inf")
    return {
        "leads_with_outcome": int(known.sum()),
        "expected_sql": expected,
        "observed_sql": observed,
        "calibration_z": (observed - expected) / math.sqrt(var),
        "observed_over_expected": observed / expected if expected else float("nan"),
        "ece": expected_calibration_error(y, p),
        "roc_auc": float(roc_auc_score(y, p)),
        "training_roc_auc": bundle.meta.metrics.get("roc_auc"),
        "mql": n_mql,
        "mql_sql_rate": rate,
        "mql_sql_rate_se": se,
        "contract_sql_rate": promise,
    }


def source_table(
    bundle: ModelBundle, cur: pd.DataFrame, mql: np.ndarray, col: str | None
) -> list[dict[str, Any]]:
    """Sources ranked by their share of SQLs (not of MQLs), with their MQL->SQL rate."""
    if not col or col not in cur.columns:
        return []
    has_label = bundle.spec.label.column in cur.columns
    y, known = label_values(cur, bundle.spec) if has_label else (np.zeros(len(cur)), np.zeros(len(cur), bool))
    frame = pd.DataFrame(
        {
            "source": cur[col].astype("string").fillna("(missing)").to_numpy(),
            "mql": mql,
            "sql": (y == 1) & known,
            "known": known,
        }
    )
    total_sql = max(int(frame["sql"].sum()), 1)
    total_mql = max(int(frame["mql"].sum()), 1)
    rows = []
    for source, grp in frame.groupby("source", sort=True):
        mql_known = grp["mql"] & grp["known"]
        rows.append(
            {
                "source": str(source),
                "leads": len(grp),
                "mql": int(grp["mql"].sum()),
                "mql_share": float(grp["mql"].sum() / total_mql),
                "sql": int(grp["sql"].sum()),
                "sql_share": float(grp["sql"].sum() / total_sql) if has_label else None,
                "mql_sql_rate": float(grp["sql"][mql_known].mean()) if mql_known.any() else None,
            }
        )
    return sorted(rows, key=lambda r: (-(r["sql_share"] or 0.0), -r["mql"], r["source"]))
