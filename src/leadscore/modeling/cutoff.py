"""Turning the signed cutoff contract into a probability threshold, and the volume/rate trade-off behind it."""

from __future__ import annotations

import numpy as np

from leadscore.errors import UserError
from leadscore.modeling.evaluate import rate_at_volume
from leadscore.scoring.contract import CutoffContract


def resolve_threshold(
    contract: CutoffContract, p: np.ndarray, weekly_volume: float | None = None
) -> tuple[float, list[str]]:
    """A threshold on calibrated probability from the contract, chosen on held-out leads."""
    p = np.asarray(p, dtype=float)
    notes: list[str] = []
    if contract.policy == "probability":
        assert contract.probability is not None
        return float(contract.probability), notes
    if contract.policy == "min_sql_rate":
        assert contract.min_sql_rate is not None
        values = np.unique(p)[::-1]  # distinct probabilities, highest first
        sorted_p = np.sort(p)[::-1]
        csum = np.cumsum(sorted_p)
        # For each distinct value v, the expected SQL rate of all leads with p >= v.
        counts = np.searchsorted(-sorted_p, -values, side="right")
        rates = csum[counts - 1] / counts
        if rates[0] < contract.min_sql_rate:
            notes.append(
                f"no threshold reaches an expected MQL->SQL rate of {contract.min_sql_rate:.0%}; "
                "only the single best-scored leads become MQL"
            )
            return float(values[0]), notes
        # Rates fall as the threshold drops; take the lowest threshold before the promise breaks.
        broken = np.flatnonzero(rates < contract.min_sql_rate)
        last = int(broken[0]) - 1 if broken.size else values.size - 1
        return float(values[last]), notes
    assert contract.mql_capacity is not None
    volume = weekly_volume or contract.weekly_leads
    if not volume:
        raise UserError(
            "cutoff contract: policy 'mql_capacity' needs the weekly lead volume: give the data a time "
            "column (--time) or set 'weekly_leads' in the contract"
        )
    share = min(1.0, contract.mql_capacity / volume)
    if share >= 1.0:
        notes.append("sales can take every lead: all leads are MQL")
        return 0.0, notes
    threshold = float(np.quantile(p, 1.0 - share, method="higher"))
    return threshold, notes


def tradeoff(
    y: np.ndarray, p: np.ndarray, points: np.ndarray | None = None, steps: int = 20
) -> list[dict[str, float | None]]:
    """For thresholds from strict to loose: MQL share, MQL->SQL rate, recall and the points model's
    rate at the same volume (what marketing and sales weigh when they choose the cutoff)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    total = max(y.sum(), 1.0)
    rows: list[dict[str, float | None]] = []
    for share in np.linspace(1 / steps, 1.0, steps):
        threshold = float(np.quantile(p, 1.0 - share, method="higher"))
        mql = p >= threshold
        count = int(mql.sum())
        rows.append(
            {
                "threshold": threshold,
                "mql_share": float(mql.mean()),
                "mql_sql_rate": float(y[mql].mean()) if count else 0.0,
                "expected_sql_rate": float(p[mql].mean()) if count else 0.0,
                "recall": float(y[mql].sum() / total),
                "points_model_sql_rate": rate_at_volume(y, points, count) if points is not None else None,
            }
        )
    return rows
