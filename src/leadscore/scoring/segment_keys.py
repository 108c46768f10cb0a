"""Reading a lead's segment: the routing key a segmented bundle scores it by.

A segment is one column's value (``region``) or a few columns' values combined (``region / product``),
read the way the encoder reads categories: case, spaces and the spec's aliases folded, placeholders
missing. Training, the service, batch scoring, the reports and the monitor all call these functions,
so a lead lands in the same segment everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features import canonical_category, clean_text
from leadscore.features.values import map_values

SEPARATOR = " / "
GLOBAL = "global"  # the sub-model name of the global model


class SegmentReader:
    """Turns a lead's segment columns into its canonical key (or None when any is missing)."""

    def __init__(
        self, by: Sequence[str], placeholders: Sequence[str], aliases: Mapping[str, Mapping[str, str]]
    ):
        self.by = list(by)
        self._ph = frozenset(p.strip().casefold() for p in placeholders)
        self._aliases = {
            col: {k.strip().casefold(): v.strip().casefold() for k, v in m.items()}
            for col, m in aliases.items()
            if col in self.by
        }

    def key(self, record: Mapping[str, Any]) -> str | None:
        return _joined([canonical_category(record.get(c), self._ph, self._aliases.get(c)) for c in self.by])

    def shown(self, record: Mapping[str, Any]) -> str | None:
        """The lead's own segment value as it was sent (for a segment the model never saw)."""
        return _joined([clean_text(record.get(c)) for c in self.by])

    def keys(self, frame: pd.DataFrame) -> np.ndarray:
        """The key of every row (object array; None where a segment column is missing or empty)."""
        n = len(frame)
        out: np.ndarray | None = None
        for col in self.by:
            if col not in frame.columns:
                return np.full(n, None, dtype=object)
            alias = self._aliases.get(col)
            part = map_values(frame[col], lambda v, a=alias: canonical_category(v, self._ph, a))
            values = part.to_numpy(dtype=object, na_value=None)
            if out is None:
                out = values
            else:
                joined = [
                    None if a is None or b is None else f"{a}{SEPARATOR}{b}"
                    for a, b in zip(out, values, strict=True)
                ]
                out = np.array(joined, dtype=object)
        assert out is not None
        return out

    def shown_values(self, frame: pd.DataFrame) -> np.ndarray:
        if any(col not in frame.columns for col in self.by):
            return np.full(len(frame), None, dtype=object)
        parts = [map_values(frame[c], clean_text).to_numpy(dtype=object, na_value=None) for c in self.by]
        return np.array(
            [
                None if any(p is None for p in row) else SEPARATOR.join(row)
                for row in zip(*parts, strict=True)
            ],
            dtype=object,
        )


def slug(name: str) -> str:
    """A segment's name as an MLflow metric or parameter key part."""
    return "".join(c if c.isalnum() else "_" for c in name.strip().lower())


def segment_rows(routing: Any) -> list[dict[str, Any]]:
    """One row per segment of a routing bundle (a ``SegmentRouting``): which model scores it, why,
    both held-out ROC AUCs, and its cutoff's promise. The card, the CLI and MLflow show these."""
    rows = []
    for key, seg in sorted(routing.models.items(), key=lambda kv: kv[1].name):
        m, cut = seg.metrics, seg.cutoff
        rows.append(
            {
                "segment": seg.name,
                "key": key,
                "model": GLOBAL if seg.model == GLOBAL else "segment",
                "why": seg.why,
                "n_leads": m.get("n_leads"),
                "n_sql": m.get("n_sql"),
                "n_test": m.get("n_test"),
                "sql_test": m.get("sql_test"),
                "roc_auc_global": m.get("roc_auc_global"),
                "roc_auc_segment": m.get("roc_auc_segment"),
                "ece": m.get("test_ece"),
                "threshold": seg.threshold,
                "policy": cut.policy if cut is not None else None,
                "mql_share": cut.expected_mql_share if cut is not None else None,
                "mql_sql_rate": cut.expected_sql_rate if cut is not None else None,
                "mql_per_week": cut.expected_mql_per_week if cut is not None else None,
            }
        )
    return rows


def _joined(parts: list[str | None]) -> str | None:
    """One key from every column's value; None when any of them is missing."""
    present = [p for p in parts if p is not None]
    return SEPARATOR.join(present) if len(present) == len(parts) else None
