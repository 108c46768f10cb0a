"""Is the model still right? Drift (PSI) per field and for the score, calibration and the contract
on recent outcomes, sources by SQL share, sales' rejection reasons, and a verdict a scheduler can act on.

Bands follow common practice for the population stability index: below 0.1 stable, 0.1-0.25 watch,
above 0.25 act. Checks on outcomes use the uncertainty of the recent sample, so a quiet period with
a few hundred leads is not flagged for noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.account_table import account_table
from leadscore.data.folders import read_leads
from leadscore.errors import UserError
from leadscore.modeling.dataset import weekly_volume
from leadscore.monitoring.drift import PSI_ACT, PSI_WATCH, band, field_drift, numeric_psi
from leadscore.monitoring.feedback import reasons_by_source
from leadscore.monitoring.horizons import horizon_checks
from leadscore.monitoring.outcomes import outcome_checks, outcome_labels, segment_checks, source_table
from leadscore.monitoring.served import SERVED_MQL, SERVED_P
from leadscore.scoring.bundle import ModelBundle
from leadscore.spec import DatasetSpec

KEY_FIELD_SHARE = 0.02  # fields carrying at least this share of the model's attribution
Z_FLAG = 3.0
MAX_REFERENCE_ROWS = 200_000
SEED = 0


@dataclass
class Verdict:
    level: str = "ok"
    reasons: list[str] = field(default_factory=list)

    def raise_to(self, level: str, reason: str) -> None:
        order = {"ok": 0, "watch": 1, "retrain": 2}
        if order[level] > order[self.level]:
            self.level = level
        self.reasons.append(f"{level}: {reason}")


def load(data: str | Path, spec: DatasetSpec) -> pd.DataFrame:
    """A period's leads as the model reads them (a folder of declared tables: its features and labels);
    for an account model, the folder's accounts at their moments with their labels."""
    if spec.account_of is not None:
        return account_table(data, spec.account_of).frame
    return read_leads(data, spec, labels=True)


def monitor(
    bundle: ModelBundle,
    reference: str | Path,
    current: str | Path | pd.DataFrame,
    *,
    feedback: pd.DataFrame | None = None,
    source: str | None = None,
    today: date | None = None,
    current_name: str | None = None,
) -> dict[str, Any]:
    """Compare a recent period (a file, or the served leads as a frame) with the training reference;
    return figures, verdict and reasons."""
    ref, cur, current, source = _periods(
        bundle, reference, current, source or bundle.spec.source, current_name
    )
    verdict = Verdict()
    X_ref, X_cur = bundle.encode(ref), bundle.encode(cur)  # once, for drift and scores alike
    fields = field_drift(bundle, ref, cur, X_ref, X_cur)
    seg_cur = bundle.segment_keys(cur)  # a routing bundle scores each lead with its segment's model
    s_ref = bundle.score_matrix(X_ref, segments=bundle.segment_keys(ref))
    s_cur = bundle.score_matrix(X_cur, segments=seg_cur)
    # Served leads: the scores and MQL flags the CRM really received (whichever version sent them).
    p_cur = cur[SERVED_P].to_numpy(dtype=float) if SERVED_P in cur.columns else s_cur.p_sql
    mql_cur = cur[SERVED_MQL].to_numpy(dtype=bool) if SERVED_MQL in cur.columns else s_cur.mql
    score_psi = numeric_psi(s_ref.p_sql, p_cur)
    labels = outcome_labels(bundle, cur, served=SERVED_P in cur.columns)  # served: sales decisions
    outcomes = outcome_checks(bundle, labels, p_cur, mql_cur)
    _judge_drift(score_psi, fields, verdict, outcomes_decide=outcomes is not None)
    if outcomes:
        _judge_outcomes(outcomes, verdict)
    horizons = horizon_checks(
        bundle, current, cur, X_cur
    )  # the time head: expected against observed by horizon
    _judge_horizons(horizons, verdict)
    cut = bundle.meta.cutoff
    volume, weekly = _volume(bundle, cur, mql_cur)
    _judge_volume(volume, len(cur), verdict)
    segments = []
    if seg_cur is not None:
        weeks = len(cur) / weekly if weekly else None
        segments = segment_checks(bundle, labels, p_cur, mql_cur, seg_cur, weeks)
        _judge_segments(segments, verdict)
    contract = cut.contract
    overdue = cut.review_warning(today)
    if overdue:
        verdict.raise_to("watch", overdue)
    rejections: list[dict[str, Any]] = []
    if feedback is not None and source and bundle.spec.id and not feedback.empty:
        rejections = reasons_by_source(feedback, cur, bundle.spec.id, source)
    return {
        "verdict": verdict.level,
        "reasons": verdict.reasons or ["no drift beyond the watch band and outcomes as promised"],
        "model_version": bundle.version,
        "registered": bundle.meta.registered.model_dump() if bundle.meta.registered else None,
        "reference": {"source": str(reference), "leads": len(ref)},
        "current": {"source": str(current), "leads": len(cur)},
        "score_psi": score_psi,
        "input_psi_weighted": weighted_psi(fields),
        "score_band": band(score_psi),
        "fields": fields,
        "outcomes": outcomes,
        "horizons": horizons,
        "volume": volume,
        "sources": source_table(cur, labels, mql_cur, source),
        "segments": segments,
        "rejections_by_source": rejections,
        "contract": {
            "version": contract.version,
            "review_by": contract.review_by.isoformat(),
            "overdue": bool(overdue),
        },
        "bands": {"stable_below": PSI_WATCH, "act_above": PSI_ACT},
    }


def _periods(
    bundle: ModelBundle,
    reference: str | Path,
    current: str | Path | pd.DataFrame,
    source: str | None,
    current_name: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame, str | Path, str | None]:
    """The reference (sampled down to ``MAX_REFERENCE_ROWS``) and the current period, the current
    period's name, and the source column where the current period has it."""
    ref = load(reference, bundle.spec)
    served = isinstance(current, pd.DataFrame)
    cur = current if isinstance(current, pd.DataFrame) else load(current, bundle.spec)
    name = current_name or ("served leads" if served else current)
    assert not isinstance(name, pd.DataFrame)
    if served and source and source not in cur.columns:
        source = None  # the score log keeps the model's own fields only
    if source and source not in cur.columns:
        raise UserError(f"{name}: source column '{source}' is missing")
    if cur.empty:
        raise UserError(f"{name}: no leads to monitor")
    if len(ref) > MAX_REFERENCE_ROWS:
        ref = ref.sample(MAX_REFERENCE_ROWS, random_state=SEED).reset_index(drop=True)
    return ref, cur, name, source


def _volume(
    bundle: ModelBundle, cur: pd.DataFrame, mql_cur: np.ndarray
) -> tuple[dict[str, float | None], float | None]:
    """The MQL share and MQLs per week against what training expected; the leads per week."""
    cut = bundle.meta.cutoff
    mql_share = float(mql_cur.mean())
    volume: dict[str, float | None] = {
        "mql_share": mql_share,
        "expected_mql_share": cut.expected_mql_share,
        "mql_per_week": None,
        "expected_mql_per_week": cut.expected_mql_per_week,
    }
    weekly = weekly_volume(cur, bundle.encoder.time_col, min_weeks=1.0)
    if weekly is not None:
        volume["mql_per_week"] = weekly * mql_share
    return volume, weekly


def weighted_psi(fields: list[dict[str, Any]]) -> float:
    """Input drift weighed by what the model reads: each field's PSI times its share of the model's
    attribution (a drifted field the model barely uses moves its scores little)."""
    return float(sum((f["share"] or 0.0) * f["psi"] for f in fields if f["psi"] is not None))


def _judge_drift(
    score_psi: float, fields: list[dict[str, Any]], verdict: Verdict, *, outcomes_decide: bool
) -> None:
    """Drift in the scores or in what the model reads calls for a retrain only while no matured
    outcomes say how the model does; where they exist, drift alone is a watch."""
    drift_level = "watch" if outcomes_decide else "retrain"
    if score_psi > PSI_ACT:
        verdict.raise_to(drift_level, f"score PSI {score_psi:.3f} is above {PSI_ACT}")
    elif score_psi >= PSI_WATCH:
        verdict.raise_to("watch", f"score PSI {score_psi:.3f} is in the watch band")
    weighted = weighted_psi(fields)
    if weighted > PSI_ACT:
        verdict.raise_to(drift_level, f"input drift weighed by attribution {weighted:.3f} is above {PSI_ACT}")
    for f in fields:
        key = (f["share"] or 0.0) >= KEY_FIELD_SHARE
        if f["band"] == "act" or (f["band"] == "watch" and key):
            verdict.raise_to(
                "watch",
                f"field '{f['field']}' PSI {f['psi']:.3f}"
                + (f" ({f['share']:.0%} of the model's attribution)" if f["share"] else "")
                + (" is in the watch band" if f["band"] == "watch" else ""),
            )
        for new in f.get("new", []):
            verdict.raise_to(
                "watch",
                f"new category '{new['value']}' in '{f['field']}' ({new['share']:.1%} of recent leads)",
            )


def _judge_horizons(rows: list[dict[str, Any]], verdict: Verdict) -> None:
    """SQLs within a horizon that are off the time head's expectation beyond their noise: a watch."""
    for row in rows:
        ratio = row["observed_sql"] / row["expected_sql"] if row["expected_sql"] else 1.0
        if abs(row["z"]) > Z_FLAG and abs(ratio - 1) > 0.2:
            verdict.raise_to(
                "watch",
                f"SQLs within {row['days']} days: {row['observed_sql']:.0f} observed against "
                f"{row['expected_sql']:.0f} expected (z {row['z']:+.1f})",
            )


def _judge_outcomes(o: dict[str, Any], verdict: Verdict) -> None:
    z, ratio = o["calibration_z"], o["observed_over_expected"]
    if abs(z) > Z_FLAG and abs(ratio - 1) > 0.2:
        verdict.raise_to(
            "retrain",
            f"calibration: {o['observed_sql']:.0f} SQLs observed against {o['expected_sql']:.0f} expected (z {z:+.1f})",
        )
    elif abs(z) > Z_FLAG:
        verdict.raise_to("watch", f"calibration drifting: observed/expected {ratio:.2f} (z {z:+.1f})")
    train_auc = o.get("training_roc_auc")
    # a drop must be beyond both samples' noise too: a test set and a recent period are samples
    noise = math.hypot(o.get("roc_auc_se") or 0.0, o.get("training_roc_auc_se") or 0.0)
    if train_auc and o["roc_auc"] is not None and o["roc_auc"] < train_auc - max(0.05, Z_FLAG * noise):
        verdict.raise_to("retrain", f"ROC AUC {o['roc_auc']:.3f} against {train_auc:.3f} at training")
    rate, se, promise = o["mql_sql_rate"], o["mql_sql_rate_se"], o["contract_sql_rate"]
    if not math.isnan(rate) and promise:
        if rate + 2 * se < 0.20:
            verdict.raise_to("retrain", f"MQL->SQL rate {rate:.1%} is below 20%: the bar is too loose")
        elif rate + Z_FLAG * se < promise:
            verdict.raise_to("watch", f"MQL->SQL rate {rate:.1%} is below the contract's {promise:.0%}")


def _judge_segments(rows: list[dict[str, Any]], verdict: Verdict) -> None:
    """A segment whose calibration, ranking or MQL->SQL rate has moved is named (watch: the global
    figures decide a retrain; a segment's sample is smaller)."""
    for row in rows:
        if "calibration_z" not in row:
            continue
        name, z, ratio = row["segment"], row["calibration_z"], row["observed_over_expected"]
        if abs(z) > Z_FLAG and abs(ratio - 1) > 0.2:
            verdict.raise_to(
                "watch",
                f"segment {name}: {row['observed_sql']:.0f} SQLs observed against {row['expected_sql']:.0f} expected (z {z:+.1f})",
            )
        trained, auc = row.get("training_roc_auc"), row["roc_auc"]
        # a segment's AUC moves more by chance than the whole's: a drop must also be beyond both samples' noise
        noise = math.hypot(row.get("roc_auc_se") or 0.0, row.get("training_roc_auc_se") or 0.0)
        if trained and auc is not None and auc < trained - max(0.05, Z_FLAG * noise):
            verdict.raise_to(
                "watch", f"segment {name}: ROC AUC {row['roc_auc']:.3f} against {trained:.3f} at training"
            )
        rate, se, promise = row["mql_sql_rate"], row["mql_sql_rate_se"], row["contract_sql_rate"]
        if not math.isnan(rate) and promise and rate + Z_FLAG * se < promise:
            verdict.raise_to(
                "watch", f"segment {name}: MQL->SQL rate {rate:.1%} is below its promised {promise:.0%}"
            )


def _judge_volume(volume: dict[str, Any], n: int, verdict: Verdict) -> None:
    expected = volume.get("expected_mql_share")
    if not expected:
        return
    share = volume["mql_share"]
    se = math.sqrt(expected * (1 - expected) / max(n, 1))
    if abs(share - expected) > max(Z_FLAG * se, 0.25 * expected):
        verdict.raise_to(
            "watch", f"MQL volume {share:.1%} of leads against {expected:.1%} expected by the contract"
        )
