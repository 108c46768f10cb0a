"""Time to SQL in the monitor: the SQLs the time head expected within 7, 30 and 90 days against those
observed, on the recent leads whose outcome by then is known."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.folders import is_declared_folder, sql_times, stage_history
from leadscore.data.maturity import export_day
from leadscore.features import dates_ms
from leadscore.modeling.survival import Observed, known_by, observed
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.time_head import HORIZONS, INTERVALS
from leadscore.spec import DatasetSpec


def horizon_checks(
    bundle: ModelBundle, current: str | Path | pd.DataFrame, cur: pd.DataFrame, X: np.ndarray
) -> list[dict[str, Any]]:
    """SQLs expected by the time head within 7, 30 and 90 days against those observed, on the leads
    whose outcome by then is known (a folder with a status history; none otherwise). ``X``: ``cur``
    as the monitor already encoded it."""
    spec = bundle.spec
    if bundle.time_head is None or isinstance(current, pd.DataFrame) or not spec.id or not spec.time:
        return []
    seen = period_survival(current, cur, spec)
    if seen is None:
        return []
    cumulative = bundle.time_head.cumulative(X)
    rows = []
    for days in HORIZONS:
        known, y = known_by(seen, days)
        p = cumulative[known, INTERVALS.index(float(days)) - 1]
        expected, observed_sql = float(p.sum()), float(y[known].sum())
        var = float((p * (1 - p)).sum()) or 1.0
        rows.append(
            {
                "days": days,
                "leads": int(known.sum()),
                "expected_sql": expected,
                "observed_sql": observed_sql,
                "z": (observed_sql - expected) / math.sqrt(var),
            }
        )
    return rows


def period_survival(current: str | Path, cur: pd.DataFrame, spec: DatasetSpec) -> Observed | None:
    """What was seen of each recent lead after its scoring time, from the period's status history
    (None for a flat export: it has no SQL times)."""
    if not spec.label.stages or spec.stages is None or not is_declared_folder(current, spec):
        return None
    history = stage_history(Path(current), spec)
    first = cur[spec.id].map(sql_times(cur, history[0], spec)).to_numpy(dtype=float, na_value=float("nan"))
    day = export_day(cur, spec, {"stages": history})
    scored = dates_ms(cur[spec.time])
    return observed(scored, first, day.ms if day else None, spec.label.within_days)
