"""The cutoff contract: the policy marketing and sales signed, turned into a probability threshold."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from leadscore.config import UserError, _validation_message, find_config, read_yaml

DEFAULT_CONTRACT = "default"


class CutoffContract(BaseModel):
    """A versioned, human-signed MQL policy with its quarterly review date."""

    model_config = ConfigDict(extra="forbid")

    version: str
    policy: Literal["min_sql_rate", "mql_capacity", "probability"]
    min_sql_rate: float | None = None
    mql_capacity: float | None = None  # leads per week sales can take
    weekly_leads: float | None = None  # needed for mql_capacity when the data has no time column
    probability: float | None = None
    agreed_by: list[str]
    agreed_on: date
    review_by: date
    notes: str = ""

    @model_validator(mode="after")
    def _policy_has_its_value(self) -> CutoffContract:
        needed = {
            "min_sql_rate": self.min_sql_rate,
            "mql_capacity": self.mql_capacity,
            "probability": self.probability,
        }
        value = needed[self.policy]
        if value is None:
            raise ValueError(f"policy '{self.policy}' needs the field '{self.policy}'")
        if self.policy in {"min_sql_rate", "probability"} and not 0 < value < 1:
            raise ValueError(f"'{self.policy}' must be between 0 and 1")
        if self.policy == "mql_capacity" and value <= 0:
            raise ValueError("'mql_capacity' must be positive")
        if self.review_by < self.agreed_on:
            raise ValueError("'review_by' is before 'agreed_on'")
        return self

    def overdue(self, today: date | None = None) -> bool:
        return (today or date.today()) > self.review_by

    def describe(self) -> str:
        if self.policy == "min_sql_rate":
            return f"lowest threshold with an expected MQL->SQL rate of at least {self.min_sql_rate:.0%}"
        if self.policy == "mql_capacity":
            return f"at most {self.mql_capacity:g} MQLs per week"
        return f"fixed probability {self.probability:g}"


def load_contract(name_or_path: str | Path = DEFAULT_CONTRACT) -> tuple[CutoffContract, Path]:
    path = find_config("cutoffs", str(name_or_path))
    try:
        return CutoffContract.model_validate(read_yaml(path)), path
    except ValidationError as exc:
        raise UserError(_validation_message(path, exc)) from exc


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


def contract_dict(contract: CutoffContract) -> dict[str, Any]:
    return contract.model_dump(mode="json")


def tradeoff(
    y: np.ndarray, p: np.ndarray, points: np.ndarray | None = None, steps: int = 20
) -> list[dict[str, float | None]]:
    """For thresholds from strict to loose: MQL share, MQL->SQL rate, recall and the points model's
    rate at the same volume (what marketing and sales weigh when they choose the cutoff)."""
    from leadscore.modeling.evaluate import rate_at_volume

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


def write_contract(path: str | Path, **fields: Any) -> CutoffContract:
    """Check a contract's fields and write it as YAML (atomically), ready for ``train --cutoff PATH``."""
    import yaml

    from leadscore.data.sources import atomic_path

    try:
        contract = CutoffContract.model_validate(fields)
    except ValidationError as exc:
        raise UserError(_validation_message(Path(path), exc)) from exc
    with atomic_path(path) as tmp:
        tmp.write_text(
            yaml.safe_dump(contract.model_dump(mode="json", exclude_none=True), sort_keys=False),
            encoding="utf-8",
        )
    return contract
