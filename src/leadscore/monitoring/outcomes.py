"""Outcomes: calibration, ROC AUC and the MQL->SQL rate where recent outcomes are known, and sources
ranked by their share of SQLs. Judged against the recent sample's own uncertainty."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.data.maturity import matured_labels
from leadscore.data.validate import label_values
from leadscore.modeling.evaluate import expected_calibration_error
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.meta import SegmentModel

MIN_OUTCOMES = 200


Labels = tuple[np.ndarray, np.ndarray]  # each lead's outcome as 0/1, and whether it is known


def outcome_labels(bundle: ModelBundle, cur: pd.DataFrame, *, served: bool = False) -> Labels | None:
    """The recent leads' outcomes the monitor judges on: matured ones (a label window closed on the
    export day); for served leads, sales' decisions, which are known whenever they exist. None
    without a label column."""
    if bundle.spec.label.column not in cur.columns:
        return None
    return label_values(cur, bundle.spec) if served else matured_labels(cur, bundle.spec)


def outcome_checks(
    bundle: ModelBundle, labels: Labels | None, p: np.ndarray, mql: np.ndarray
) -> dict[str, Any] | None:
    """Calibration, ROC AUC and the MQL->SQL rate where the recent leads' outcomes are known."""
    if labels is None:
        return None
    y, known = labels
    if known.sum() < MIN_OUTCOMES or len(np.unique(y[known])) < 2:
        return None
    y, p, mql = y[known].astype(float), p[known], mql[known]
    figures = outcome_figures(y, p, mql)
    metrics = bundle.meta.metrics
    n_test, test_rate = metrics.get("n_test") or 0, bundle.meta.card.data.get("test_sql_rate") or 0.0
    return {
        "leads_with_outcome": int(known.sum()),
        **figures,
        "roc_auc_se": auc_se(figures["roc_auc"], int(y.sum()), int(len(y) - y.sum())),
        "training_roc_auc": metrics.get("roc_auc"),
        "training_roc_auc_se": auc_se(
            metrics.get("roc_auc"), round(n_test * test_rate), round(n_test * (1 - test_rate))
        ),
        "mql": int(mql.sum()),
        "contract_sql_rate": bundle.meta.cutoff.promised_sql_rate,
    }


def outcome_figures(y: np.ndarray, p: np.ndarray, mql: np.ndarray) -> dict[str, Any]:
    """Leads with known outcomes ``y``: SQLs observed against expected (with the z of the difference),
    ECE, ROC AUC (None with one class only) and the MQL->SQL rate with its standard error."""
    expected, observed = float(p.sum()), float(y.sum())
    var = float((p * (1 - p)).sum()) or 1.0
    rate = float(y[mql].mean()) if mql.any() else float("nan")
    n_mql = int(mql.sum())
    return {
        "expected_sql": expected,
        "observed_sql": observed,
        "calibration_z": (observed - expected) / math.sqrt(var),
        "observed_over_expected": observed / expected if expected else float("nan"),
        "ece": expected_calibration_error(y, p),
        "roc_auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None,
        "mql_sql_rate": rate,
        "mql_sql_rate_se": math.sqrt(max(rate * (1 - rate), 1e-9) / n_mql) if n_mql else float("inf"),
    }


def source_table(
    cur: pd.DataFrame, labels: Labels | None, mql: np.ndarray, col: str | None
) -> list[dict[str, Any]]:
    """Sources ranked by their share of SQLs (not of MQLs), with their MQL->SQL rate."""
    if not col or col not in cur.columns:
        return []
    has_label = labels is not None
    y, known = labels if labels is not None else (np.zeros(len(cur)), np.zeros(len(cur), bool))
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


def auc_se(auc: float | None, n_pos: int, n_neg: int) -> float | None:
    """The standard error of a ROC AUC (Hanley and McNeil, 1982)."""
    if auc is None or n_pos < 1 or n_neg < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


MIN_SEGMENT_OUTCOMES = 100  # fewer known outcomes in a segment: its volume only, no outcome checks
OTHER_SEGMENT = "(other or missing)"


def segment_checks(
    bundle: ModelBundle,
    labels: Labels | None,
    p: np.ndarray,
    mql: np.ndarray,
    keys: np.ndarray,
    weeks: float | None,
) -> list[dict[str, Any]]:
    """Per segment of a routing bundle: leads, MQL volume against its cutoff's promise and, where
    outcomes are known, calibration, ROC AUC and MQL->SQL rate against what training measured.
    ``weeks``: the recent period's length in weeks (for MQLs per week), when known."""
    routing = bundle.meta.segments
    if routing is None:
        return []
    y, known = labels if labels is not None else (np.zeros(len(p)), np.zeros(len(p), bool))
    known_keys = set(routing.models)
    groups: list[tuple[str, np.ndarray, SegmentModel | None]] = [
        (routing.models[k].name, keys == k, routing.models[k])
        for k in sorted(known_keys, key=lambda k: routing.models[k].name)
    ]
    other = np.array([k not in known_keys for k in keys.tolist()], dtype=bool)
    if other.any():
        groups.append((OTHER_SEGMENT, other, None))
    rows = []
    for name, rows_in, seg in groups:
        n = int(rows_in.sum())
        if n == 0:
            continue
        cut = seg.cutoff if seg is not None and seg.cutoff is not None else bundle.meta.cutoff
        n_mql = int(mql[rows_in].sum())
        row: dict[str, Any] = {
            "segment": name,
            "model": (seg.model if seg is not None else "global"),
            "leads": n,
            "mql": n_mql,
            "mql_share": n_mql / n,
            "expected_mql_share": cut.expected_mql_share if seg is not None else None,
            "mql_per_week": n_mql / weeks if weeks else None,
            "expected_mql_per_week": cut.expected_mql_per_week if seg is not None else None,
            "mean_p_sql": float(p[rows_in].mean()),
            "leads_with_outcome": int((known & rows_in).sum()),
        }
        k = known & rows_in
        if k.sum() >= MIN_SEGMENT_OUTCOMES:  # calibration and the rate; ROC AUC needs both classes
            yk = y[k].astype(float)
            figures = outcome_figures(yk, p[k], mql[k])
            metrics = seg.metrics if seg is not None else {}
            row.update(
                {
                    **figures,
                    "training_roc_auc": metrics.get("test_roc_auc"),
                    "roc_auc_se": auc_se(figures["roc_auc"], int(yk.sum()), int(len(yk) - yk.sum())),
                    "training_roc_auc_se": auc_se(
                        metrics.get("test_roc_auc"),
                        int(metrics.get("sql_test") or 0),
                        int((metrics.get("n_test") or 0) - (metrics.get("sql_test") or 0)),
                    ),
                    "contract_sql_rate": cut.promised_sql_rate,
                }
            )
        rows.append(row)
    return rows
