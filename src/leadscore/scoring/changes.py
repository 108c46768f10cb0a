"""Why a score changed since the lead's previous answer: the fields that changed, each with how far
its change alone moves P(SQL).

The lead's fields as logged with its previous answer and its fields now are encoded by the model;
for each field whose value changed, the previous fields with only that one set to its new value are
scored: the difference from the previous score is that change's weight, in percentage points of
P(SQL) ("Pricing page visits in the last 7 days: 0 -> 3, +12 points"). One batched prediction
answers every changed field of every lead, so it costs a few microseconds a lead (TreeSHAP of both
states would cost twice an answer's reasons). The largest ``MOST`` of at least ``MIN_POINTS`` are
listed, largest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from leadscore.scoring.predictor import Predictor

MIN_POINTS = 0.5  # percentage points: a smaller move is noise to a rep
MOST = 3


def score_changes(
    model: Predictor,
    records: Sequence[Mapping[str, Any]],
    previous: Sequence[Any],
    most: int = MOST,
    encoded: np.ndarray | None = None,
) -> list[list[dict[str, Any]] | None]:
    """For each lead, its changes since ``previous[i]`` (its logged fields: JSON text or a mapping),
    or None where there is no previous record to compare with (``encoded``: the records as the
    model's encoder made them already, for the answer)."""
    out: list[list[dict[str, Any]] | None] = [None] * len(records)
    rows = [i for i, p in enumerate(previous) if p is not None]
    if not rows:
        return out
    before = [_mapping(previous[i]) for i in rows]
    after = [records[i] for i in rows]
    encoder = model.encoder
    X_before = encoder.encode_records(before)
    X_after = encoded[rows] if encoded is not None else encoder.encode_records(after)
    columns = _columns_of(model)
    differs = ~((X_before == X_after) | (np.isnan(X_before) & np.isnan(X_after)))
    changed = np.stack([differs[:, cols].any(axis=1) for cols in columns], axis=1)  # lead x field
    lead, field = np.nonzero(changed)
    if not len(lead):  # nothing moved: no prediction to make
        for i in rows:
            out[i] = []
        return out
    swapped = X_before[lead].copy()
    for j in np.unique(field):
        at = field == j
        swapped[np.ix_(at, columns[j])] = X_after[np.ix_(lead[at], columns[j])]
    p_before = model.probability(model.raw_score(X_before))
    points = (
        (model.probability(model.raw_score(swapped)) - p_before[lead]) * 100 if len(lead) else np.empty(0)
    )
    for n, i in enumerate(rows):
        mine = np.flatnonzero(lead == n) if len(lead) else np.empty(0, dtype=np.intp)
        ranked = mine[np.argsort(-np.abs(points[mine]), kind="stable")]
        found = (
            _change(model, model.fields[field[k]], before[n], after[n], float(points[k]))
            for k in ranked
            if abs(points[k]) >= MIN_POINTS
        )
        out[i] = [c for c in found if c["before"] != c["after"]][:most]  # a date read again: no change
    return out


def _columns_of(model: Predictor) -> list[np.ndarray]:
    """Each field's encoded columns (in the model's field order)."""
    sources = np.asarray(model.encoder.feature_fields, dtype=object)
    return [np.flatnonzero(sources == name) for name in model.fields]


def _mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str | bytes):
        loaded = orjson.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return value if isinstance(value, Mapping) else {}


def _change(
    model: Predictor, name: str, before: Mapping[str, Any], after: Mapping[str, Any], points: float
) -> dict[str, Any]:
    label = model.phraser.label(name)
    was, now = _shown(model, name, before.get(name)), _shown(model, name, after.get(name))
    return {
        "field": name,
        "label": label,
        "before": was,
        "after": now,
        "points": round(points, 1),
        "text": f"{label}: {was} -> {now}, {points:+.0f} points",
    }


def _shown(model: Predictor, name: str, value: Any) -> str:
    shown = model.encoder.describe_value(name, value)
    return "not given" if shown is None else shown
