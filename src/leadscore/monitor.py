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
from sklearn.metrics import roc_auc_score

from leadscore.bundle import ModelBundle
from leadscore.config import UserError, overdue_review
from leadscore.data.sources import read_table, resolve_leads_path
from leadscore.data.validate import label_values
from leadscore.features import canonical_category

PSI_WATCH = 0.10
PSI_ACT = 0.25
EPS = 1e-4
MIN_SHARE_NEW = 0.01  # a new category this common is worth a look
MIN_SHARE_GONE = 0.005
KEY_FIELD_SHARE = 0.02  # fields carrying at least this share of the model's attribution
MIN_OUTCOMES = 200
Z_FLAG = 3.0
MAX_REFERENCE_ROWS = 200_000
SEED = 0


def band(psi: float) -> str:
    return "stable" if psi < PSI_WATCH else ("watch" if psi <= PSI_ACT else "act")


def psi_from_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index between two histograms over the same bins."""
    r = np.maximum(ref / max(ref.sum(), 1), EPS)
    c = np.maximum(cur / max(cur.sum(), 1), EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    """PSI over the reference's deciles, with missing values as a bin of their own."""
    ref_ok, cur_ok = ~np.isnan(ref), ~np.isnan(cur)
    edges: np.ndarray = (
        np.unique(np.quantile(ref[ref_ok], np.linspace(0, 1, bins + 1)[1:-1]))
        if ref_ok.any()
        else np.array([])
    )
    r = np.bincount(np.searchsorted(edges, ref[ref_ok], side="right"), minlength=len(edges) + 1)
    c = np.bincount(np.searchsorted(edges, cur[cur_ok], side="right"), minlength=len(edges) + 1)
    return psi_from_counts(
        np.append(r, (~ref_ok).sum()).astype(float), np.append(c, (~cur_ok).sum()).astype(float)
    )


def code_psi(ref: np.ndarray, cur: np.ndarray) -> float:
    size = int(max(ref.max(initial=0), cur.max(initial=0))) + 1
    return psi_from_counts(
        np.bincount(ref.astype(int), minlength=size).astype(float),
        np.bincount(cur.astype(int), minlength=size).astype(float),
    )


@dataclass
class Verdict:
    level: str = "ok"
    reasons: list[str] = field(default_factory=list)

    def raise_to(self, level: str, reason: str) -> None:
        order = {"ok": 0, "watch": 1, "retrain": 2}
        if order[level] > order[self.level]:
            self.level = level
        self.reasons.append(f"{level}: {reason}")


def load(data: str | Path) -> pd.DataFrame:
    return read_table(resolve_leads_path(data))


def field_drift(
    bundle: ModelBundle, ref: pd.DataFrame, cur: pd.DataFrame, X_ref: np.ndarray, X_cur: np.ndarray
) -> list[dict[str, Any]]:
    """PSI per model field (on the encoded rows ``X_ref`` and ``X_cur``), with new and gone categories."""
    enc = bundle.encoder
    first: dict[str, int] = {}
    for j, name in enumerate(enc.feature_fields):
        first.setdefault(name, j)
    importance = bundle.meta.get("card", {}).get("importance", {})
    rows = []
    for f in enc.fields:
        j = first[f.name]
        row: dict[str, Any] = {
            "field": f.name,
            "group": f.group,
            "kind": f.kind,
            "share": importance.get(f.name),
        }
        if f.kind == "categorical":
            row["psi"] = code_psi(
                np.nan_to_num(X_ref[:, j], nan=-1) + 1, np.nan_to_num(X_cur[:, j], nan=-1) + 1
            )
            row.update(_category_changes(f.name, enc, ref, cur))
        else:
            row["psi"] = numeric_psi(X_ref[:, j], X_cur[:, j])
        row["band"] = band(row["psi"])
        rows.append(row)
    return sorted(rows, key=lambda r: -r["psi"])


def _category_changes(name: str, enc: Any, ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, Any]:
    if name not in cur.columns or name not in ref.columns:
        return {"new": [], "gone": []}
    aliases = enc.aliases.get(name)
    ph = frozenset(p.casefold() for p in enc.placeholders)

    spelled: dict[str, str] = {}

    def shares(frame: pd.DataFrame) -> pd.Series:
        raw = frame[name].astype(object)
        values = raw.map(lambda v: canonical_category(v, ph, aliases))
        for canon, original in zip(values, raw, strict=True):
            if canon is not None and canon not in spelled:
                spelled[canon] = str(original).strip()  # show the value as the CRM spells it
        return values.dropna().value_counts(normalize=True)

    r, c = shares(ref), shares(cur)
    new = [
        {"value": spelled.get(v, str(v)), "share": float(s)}
        for v, s in c.items()
        if v not in r.index and s >= MIN_SHARE_NEW
    ]
    gone = [
        {"value": spelled.get(v, str(v)), "share": float(s)}
        for v, s in r.items()
        if v not in c.index and s >= MIN_SHARE_GONE
    ]
    return {"new": new, "gone": gone}


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
    cut = bundle.meta.get("cutoff", {})
    contract = cut.get("contract", {})
    promise = contract.get("min_sql_rate") or cut.get("expected_sql_rate")
    rate = float(y[mql].mean()) if mql.any() else float("nan")
    n_mql = int(mql.sum())
    se = math.sqrt(max(rate * (1 - rate), 1e-9) / n_mql) if n_mql else float("inf")
    from leadscore.modeling.evaluate import expected_calibration_error

    return {
        "leads_with_outcome": int(known.sum()),
        "expected_sql": expected,
        "observed_sql": observed,
        "calibration_z": (observed - expected) / math.sqrt(var),
        "observed_over_expected": observed / expected if expected else float("nan"),
        "ece": expected_calibration_error(y, p),
        "roc_auc": float(roc_auc_score(y, p)),
        "training_roc_auc": bundle.meta.get("metrics", {}).get("roc_auc"),
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


def _weekly(frame: pd.DataFrame, time_col: str | None) -> float | None:
    if not time_col or time_col not in frame.columns:
        return None
    from leadscore.features import dates_ms

    t = dates_ms(frame[time_col])
    t = t[~np.isnan(t)]
    if t.size < 2:
        return None
    weeks = (t.max() - t.min()) / (7 * 86_400_000)
    return float(t.size / weeks) if weeks >= 1 else None


def monitor(
    bundle: ModelBundle,
    reference: str | Path,
    current: str | Path,
    *,
    feedback: pd.DataFrame | None = None,
    source: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Compare a recent period with the training reference; return figures, verdict and reasons."""
    source = source or bundle.spec.source
    ref, cur = load(reference), load(current)
    if source and source not in cur.columns:
        raise UserError(f"{current}: source column '{source}' is missing")
    if cur.empty:
        raise UserError(f"{current}: no leads to monitor")
    if len(ref) > MAX_REFERENCE_ROWS:
        ref = ref.sample(MAX_REFERENCE_ROWS, random_state=SEED).reset_index(drop=True)
    verdict = Verdict()
    X_ref, X_cur = bundle.encode(ref), bundle.encode(cur)  # once, for drift and scores alike
    fields = field_drift(bundle, ref, cur, X_ref, X_cur)
    s_ref, s_cur = bundle.score_matrix(X_ref), bundle.score_matrix(X_cur)
    score_psi = numeric_psi(s_ref.p_sql, s_cur.p_sql)
    if score_psi > PSI_ACT:
        verdict.raise_to("retrain", f"score PSI {score_psi:.3f} is above {PSI_ACT}")
    elif score_psi >= PSI_WATCH:
        verdict.raise_to("watch", f"score PSI {score_psi:.3f} is in the watch band")
    for f in fields:
        key = (f["share"] or 0.0) >= KEY_FIELD_SHARE
        if f["band"] == "act":
            verdict.raise_to(
                "retrain" if key else "watch",
                f"field '{f['field']}' PSI {f['psi']:.3f}"
                + (f" ({f['share']:.0%} of the model's attribution)" if f["share"] else ""),
            )
        elif f["band"] == "watch" and key:
            verdict.raise_to("watch", f"field '{f['field']}' PSI {f['psi']:.3f} is in the watch band")
        for new in f.get("new", []):
            verdict.raise_to(
                "watch",
                f"new category '{new['value']}' in '{f['field']}' ({new['share']:.1%} of recent leads)",
            )
    outcomes = outcome_checks(bundle, cur, s_cur.p_sql, s_cur.mql)
    if outcomes:
        _judge_outcomes(outcomes, verdict)
    cut = bundle.meta.get("cutoff", {})
    volume = {
        "mql_share": float(s_cur.mql.mean()),
        "expected_mql_share": cut.get("expected_mql_share"),
        "mql_per_week": None,
        "expected_mql_per_week": cut.get("expected_mql_per_week"),
    }
    weekly = _weekly(cur, bundle.encoder.time_col)
    if weekly is not None:
        volume["mql_per_week"] = weekly * volume["mql_share"]
    _judge_volume(volume, len(cur), verdict)
    contract = cut.get("contract", {})
    review_by = contract.get("review_by")
    overdue = overdue_review(contract, today)
    if overdue:
        verdict.raise_to("watch", overdue)
    rejections: list[dict[str, Any]] = []
    if feedback is not None and source and bundle.spec.id and not feedback.empty:
        from leadscore.feedback import reasons_by_source

        rejections = reasons_by_source(feedback, cur, bundle.spec.id, source)
    return {
        "verdict": verdict.level,
        "reasons": verdict.reasons or ["no drift beyond the watch band and outcomes as promised"],
        "model_version": bundle.version,
        "registered": bundle.meta.get("registered"),
        "reference": {"source": str(reference), "leads": len(ref)},
        "current": {"source": str(current), "leads": len(cur)},
        "score_psi": score_psi,
        "score_band": band(score_psi),
        "fields": fields,
        "outcomes": outcomes,
        "volume": volume,
        "sources": source_table(bundle, cur, s_cur.mql, source),
        "rejections_by_source": rejections,
        "contract": {"version": contract.get("version"), "review_by": review_by, "overdue": bool(overdue)},
        "bands": {"stable_below": PSI_WATCH, "act_above": PSI_ACT},
    }


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
    if train_auc and o["roc_auc"] < train_auc - 0.05:
        verdict.raise_to("retrain", f"ROC AUC {o['roc_auc']:.3f} against {train_auc:.3f} at training")
    rate, se, promise = o["mql_sql_rate"], o["mql_sql_rate_se"], o["contract_sql_rate"]
    if not math.isnan(rate) and promise:
        if rate + 2 * se < 0.20:
            verdict.raise_to("retrain", f"MQL->SQL rate {rate:.1%} is below 20%: the bar is too loose")
        elif rate + Z_FLAG * se < promise:
            verdict.raise_to("watch", f"MQL->SQL rate {rate:.1%} is below the contract's {promise:.0%}")


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
