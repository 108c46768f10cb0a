"""Sales' decisions as labels: accepted means SQL, rejected means not SQL; the latest decision wins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.lifecycle import DateLabels
from leadscore.errors import UserError
from leadscore.features.values import lead_key
from leadscore.spec import DatasetSpec


def latest_decisions(store: pd.DataFrame) -> pd.DataFrame:
    """Each lead's latest decision (leads move backward: a later rejection overrides an acceptance)."""
    ordered = store.sort_values(["lead_id", "decided_at"], kind="stable")
    return ordered.drop_duplicates("lead_id", keep="last").set_index("lead_id")


def decided_leads(frame: pd.DataFrame, spec: DatasetSpec, store: pd.DataFrame) -> np.ndarray:
    """Which leads have a sales decision (their label is known whatever their window)."""
    if store.empty or not spec.id or spec.id not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    decisions = latest_decisions(store)["decision"]
    return frame[spec.id].map(lead_key).isin(decisions.index.map(lead_key)).to_numpy(dtype=bool)


def apply_labels(frame: pd.DataFrame, spec: DatasetSpec, store: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Set the label from sales' decisions (accepted -> SQL, rejected -> not SQL) where there is one."""
    if not spec.id or spec.id not in frame.columns:
        raise UserError(f"feedback labels need the id column '{spec.id}' in the training data")
    if store.empty:
        return frame, 0
    decisions = latest_decisions(store)["decision"]
    decisions.index = decisions.index.map(lead_key)
    found = frame[spec.id].map(lead_key).map(decisions)
    has = found.notna().to_numpy()
    label = frame[spec.label.column].astype(object).copy() if spec.label.column in frame.columns else None
    if label is None:
        label = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    positive, negative = spec.label.positive[0], (spec.label.negative or [None])[0]
    if negative is None:
        raise UserError(f"dataset '{spec.name}': feedback labels need a negative label value in the spec")
    new = np.where((found == "accepted").fillna(False).to_numpy(dtype=bool), positive, negative)
    changed = int((label[has].astype(str).to_numpy() != pd.Series(new[has]).astype(str).to_numpy()).sum())
    label[has] = new[has]
    out = frame.copy()
    out[spec.label.column] = label
    return out, changed


def reached_times(frame: pd.DataFrame, spec: DatasetSpec, until_ms: float | None) -> pd.Series | None:
    """A flat export's SQL times: each lead's first lifecycle date (``label.date_columns``) or date in
    its ``label.reached_at`` column after its scoring time, within the window and by the export day
    (epoch ms, by lead id; leads without one are absent). None without such a column, an id or a time."""
    if spec.label.date_columns and spec.id:
        dated = DateLabels(frame, spec)
    else:
        column = spec.label.reached_at
        if column is None or not spec.id or not spec.time or spec.time not in frame.columns:
            return None
        if column not in frame.columns:
            raise UserError(f"column '{column}' (spec key label.reached_at) is not in the leads table")
        dated = DateLabels(frame, spec, [column])
    reached = dated.first
    hit = ~np.isnan(reached)
    if until_ms is not None:
        hit &= reached <= until_ms
    return pd.Series(reached[hit]).groupby(frame[spec.id].to_numpy()[hit]).min()
