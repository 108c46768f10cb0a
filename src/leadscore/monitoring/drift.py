"""Drift: the population stability index (PSI) per field and for the score, new and gone categories.

Bands follow common practice: below 0.1 stable, 0.1-0.25 watch, above 0.25 act.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from leadscore.features import canonical_category
from leadscore.scoring.bundle import ModelBundle

PSI_WATCH = 0.10
PSI_ACT = 0.25
EPS = 1e-4
MIN_SHARE_NEW = 0.01  # a new category this common is worth a look
MIN_SHARE_GONE = 0.005


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


def field_drift(
    bundle: ModelBundle, ref: pd.DataFrame, cur: pd.DataFrame, X_ref: np.ndarray, X_cur: np.ndarray
) -> list[dict[str, Any]]:
    """PSI per model field (on the encoded rows ``X_ref`` and ``X_cur``), with new and gone categories."""
    enc = bundle.encoder
    first: dict[str, int] = {}
    for j, name in enumerate(enc.feature_fields):
        first.setdefault(name, j)
    importance = bundle.meta.card.importance
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
