"""Sales feedback: accept/reject decisions from the CRM, stored without loss, turned into labels.

A decision is one row: ``lead_id``, ``decision`` (accepted or rejected), ``reason`` (one of the
standard rejection reasons), ``decided_at`` and, when the CRM has it, ``mql_at`` and ``rep``. They
live in the store's ``decisions`` table (``leadscore.store``), written in one transaction; a
decision is identified by (lead, decision, time), so importing the same export twice changes
nothing and two imports at once lose nothing. The Parquet file of earlier versions is imported
once by ``leadscore store migrate-feedback``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.sources import read_table
from leadscore.errors import UserError
from leadscore.features import clean_text, dates_ms
from leadscore.features.values import id_problem, lead_key
from leadscore.spec import DatasetSpec
from leadscore.spec.reasons import STANDARD_REASONS
from leadscore.store.db import open_store
from leadscore.store.decisions import (
    add_decisions,
    count_decisions,
    decision_of,
    load_decisions,
    reasons_said,
    standard_reason,
)

MAX_REP_LENGTH = 200  # the store's column for the rep's name
FAST_SLA_HOURS = 1.0
SLA_HOURS = 24.0


def _bad(path: str | Path, column: str, row: int, message: str) -> UserError:
    return UserError(f"{path}: column '{column}', row {row + 2}: {message}")  # +2: header, 1-based


def normalise(raw: pd.DataFrame, path: str | Path, own: Sequence[str] = ()) -> pd.DataFrame:
    """Check a CRM feedback export and return it in the store's shape (one-line errors name row and
    column); ``own``: the spec's own reasons, taken beside the standard ones."""
    raw = raw.rename(columns={c: str(c).strip().lower().replace(" ", "_") for c in raw.columns})
    for col in ("lead_id", "decision", "decided_at"):
        if col not in raw.columns:
            raise UserError(f"{path}: column '{col}' is missing (need lead_id, decision, reason, decided_at)")
    out = pd.DataFrame(index=raw.index)
    ids = raw["lead_id"].map(lead_key)  # the one rule for ids: kept as sent, ends trimmed
    missing = (ids == "").to_numpy()
    if missing.any():
        raise _bad(path, "lead_id", int(np.flatnonzero(missing)[0]), "empty lead id")
    for row, key in enumerate(ids):
        problem = id_problem(key)
        if problem:
            raise _bad(path, "lead_id", row, problem)
    out["lead_id"] = ids.astype("string")
    decision = raw["decision"].map(decision_of)
    unknown = decision.isna().to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise _bad(path, "decision", i, f"'{raw['decision'].iloc[i]}' is not accepted or rejected")
    out["decision"] = decision.astype("string")
    reasons = raw["reason"] if "reason" in raw.columns else pd.Series([None] * len(raw), index=raw.index)
    reason = reasons.map(lambda v: standard_reason(v, own))
    rejected = (out["decision"] == "rejected").to_numpy()
    for at in np.flatnonzero(rejected & (reason.isna() | (reason == "?")).to_numpy()):
        row = int(at)
        shown = reasons.iloc[row]
        why = (
            "a rejection needs a reason"
            if reason.iloc[row] is None
            else f"'{shown}' is not a standard reason"
        )
        raise _bad(path, "reason", row, f"{why} ({reasons_said(own)})")
    out["reason"] = reason.where(pd.Series(rejected, index=raw.index), None).astype("string")
    for col in ("decided_at", "mql_at"):
        if col not in raw.columns:
            out[col] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ms]")
            continue
        ms = dates_ms(raw[col])
        bad = np.isnan(ms) & raw[col].map(clean_text).notna().to_numpy()
        if bad.any() or (col == "decided_at" and np.isnan(ms).any()):
            i = int(np.flatnonzero(bad | (np.isnan(ms) if col == "decided_at" else bad))[0])
            raise _bad(path, col, i, f"'{raw[col].iloc[i]}' is not a date and time")
        out[col] = pd.to_datetime(pd.Series(ms, index=raw.index), unit="ms").astype("datetime64[ms]")
    early = (out["mql_at"] > out["decided_at"]).fillna(False).to_numpy(dtype=bool)
    if early.any():
        raise _bad(path, "decided_at", int(np.flatnonzero(early)[0]), "decided before the lead became an MQL")
    out["rep"] = raw["rep"].map(clean_text).astype("string") if "rep" in raw.columns else pd.NA
    out["rep"] = out["rep"].astype("string")
    too_long = (out["rep"].str.len() > MAX_REP_LENGTH).fillna(False).to_numpy(dtype=bool)
    if too_long.any():  # the store's column: refused here on both databases, not by PostgreSQL alone
        raise _bad(path, "rep", int(np.flatnonzero(too_long)[0]), f"longer than {MAX_REP_LENGTH} characters")
    return out.reset_index(drop=True)


def existing_store(store: str | Path | None = None) -> str:
    """The store's URL when it holds decisions, or a one-line error saying how to add them."""
    opened = open_store(store)
    if not count_decisions(opened):
        raise UserError(
            f"{opened.shown}: no sales decisions in the store (run leadscore feedback import first)"
        )
    return opened.url


def load_store(store: str | Path | None = None) -> pd.DataFrame:
    """Every decision in the store (``COLUMNS``), oldest first."""
    return load_decisions(open_store(store))


def import_feedback(
    path: str | Path, store: str | Path | None = None, own: Sequence[str] = ()
) -> dict[str, Any]:
    """Add a CRM export's decisions to the store in one transaction; decisions already there are left
    as they are (``own``: the spec's own reasons to reject, beside the standard ones)."""
    incoming = normalise(read_table(path), path, own)
    opened = open_store(store)
    new, unique = add_decisions(opened, incoming)
    return {
        "file": str(path),
        "store": opened.shown,
        "rows_in_file": unique,
        "new": new,
        "already_known": unique - new,
        "total": count_decisions(opened),
    }


def migrate_feedback(parquet: str | Path, store: str | Path | None = None) -> dict[str, Any]:
    """The Parquet feedback store of earlier versions, imported once into the database (running it
    again adds nothing)."""
    return import_feedback(parquet, store)


def reasons_by_source(
    store: pd.DataFrame, leads: pd.DataFrame, id_col: str, source_col: str
) -> list[dict[str, Any]]:
    """Rejection reasons counted per lead source (the monitor shows where bad data comes from)."""
    rejected = store[store["decision"] == "rejected"]
    if rejected.empty or source_col not in leads.columns:
        return []
    sources = pd.Series(leads[source_col].astype("string").to_numpy(), index=leads[id_col].astype("string"))
    sources = sources[~sources.index.duplicated()]
    src = rejected["lead_id"].map(sources).fillna("(not in data)")
    table = pd.crosstab(src, rejected["reason"].fillna("?"))
    rows = []
    for source, counts in table.iterrows():
        row = {"source": str(source), "rejected": int(counts.sum())}
        row.update({reason: int(counts.get(reason, 0)) for reason in STANDARD_REASONS})
        rows.append(row)
    return sorted(rows, key=lambda r: (-(r["duplicate"] + r["bad data"]), -r["rejected"], r["source"]))


def with_logged_mql_times(
    store: pd.DataFrame, served: pd.DataFrame, spec: DatasetSpec | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Decisions whose CRM export has no ``mql_at`` take the time the score log first sent the lead as
    an MQL; the fields it was sent with tell the fast lane (as a leads table keyed by the spec's id)."""
    if served.empty:
        return store, None
    first = served.set_index(served["lead_id"].astype(str))
    logged = store["lead_id"].astype(str).map(first["mql_at"])
    out = store.copy()
    out["mql_at"] = out["mql_at"].fillna(pd.to_datetime(logged).astype("datetime64[ms]"))
    leads = None
    if spec is not None and spec.id:
        leads = pd.DataFrame(list(served["inputs"].map(lambda v: v or {})))
        leads[spec.id] = served["lead_id"].astype(str).to_numpy()
    return out, leads


def sla_report(
    store: pd.DataFrame, leads: pd.DataFrame | None = None, spec: DatasetSpec | None = None
) -> dict[str, Any]:
    """Time from MQL to accept or reject, against 1 hour for demo or pricing requests, else 24 hours."""
    timed = store.dropna(subset=["mql_at"])
    timed = timed[(timed["decided_at"] >= timed["mql_at"]).to_numpy(dtype=bool)]  # decided after it was sent
    if timed.empty:
        raise UserError(
            "no decision has an mql_at time: the CRM export needs it for the service-level report"
        )
    first = timed.sort_values("decided_at", kind="stable").drop_duplicates("lead_id", keep="first")
    hours = (first["decided_at"] - first["mql_at"]).dt.total_seconds().to_numpy() / 3600
    fast = np.zeros(len(first), dtype=bool)
    if leads is not None and spec is not None and spec.id and spec.respond_fast_when:
        by_id = leads.drop_duplicates(spec.id).set_index(
            leads.drop_duplicates(spec.id)[spec.id].astype("string")
        )
        for col in spec.respond_fast_when:
            if col in by_id.columns:
                values = pd.to_numeric(first["lead_id"].map(by_id[col]), errors="coerce").to_numpy(
                    dtype=float
                )
                fast |= np.nan_to_num(values) > 0
    target = np.where(fast, FAST_SLA_HOURS, SLA_HOURS)
    met = hours <= target
    lanes = []
    for name, mask, limit in (("demo or pricing request", fast, FAST_SLA_HOURS), ("other", ~fast, SLA_HOURS)):
        h = hours[mask]
        lanes.append(
            {
                "lane": name,
                "target_hours": limit,
                "decisions": int(mask.sum()),
                "within_target": int(met[mask].sum()),
                "share_within_target": float(met[mask].mean()) if mask.any() else None,
                "median_hours": float(np.median(h)) if h.size else None,
                "p90_hours": float(np.quantile(h, 0.9)) if h.size else None,
            }
        )
    by_rep = []
    if first["rep"].notna().any():
        frame = pd.DataFrame({"rep": first["rep"].fillna("(none)").to_numpy(), "met": met, "hours": hours})
        for rep, grp in frame.groupby("rep", sort=True):
            by_rep.append(
                {
                    "rep": str(rep),
                    "decisions": len(grp),
                    "share_within_target": float(grp["met"].mean()),
                    "median_hours": float(grp["hours"].median()),
                }
            )
    return {
        "decisions": int(len(first)),
        "within_target": int(met.sum()),
        "share_within_target": float(met.mean()),
        "lanes": lanes,
        "by_rep": by_rep,
        "fast_lane_known": bool(leads is not None and spec is not None and spec.respond_fast_when),
    }
