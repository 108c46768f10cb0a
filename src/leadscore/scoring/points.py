"""The written points model: fit and engagement points, MQL at 60 with at least 20 from fit.

It is the baseline every model is compared with and the cold-start fallback. Rules live in
YAML (``configs/rules/*.yaml``) so a team can write down its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadscore.config import find_config, read_yaml, validation_message
from leadscore.errors import UserError
from leadscore.features import canonical_category, map_unique, to_number

Op = Literal["in", "not_in", ">=", ">", "<=", "<", "==", "between"]


class Rule(BaseModel):
    """One line of the written model, e.g. "pricing page +15"."""

    model_config = ConfigDict(extra="forbid")

    name: str
    part: Literal["fit", "engagement"]
    points: float
    column: str
    op: Op
    value: Any

    @model_validator(mode="after")
    def _check_value(self) -> Rule:
        if self.op in {"in", "not_in"} and not isinstance(self.value, list):
            raise ValueError(f"rule '{self.name}': op '{self.op}' needs a list value")
        if self.op == "between" and (not isinstance(self.value, list) or len(self.value) != 2):
            raise ValueError(f"rule '{self.name}': op 'between' needs [low, high]")
        return self


class PointsModel(BaseModel):
    """A written points model: its rules and its MQL bar."""

    model_config = ConfigDict(extra="forbid")

    name: str = "points"
    mql_points: float = 60
    min_fit_points: float = 20
    placeholders: list[str] = Field(default_factory=lambda: ["select", "n/a", "na", ""])
    rules: list[Rule]

    @property
    def columns(self) -> list[str]:
        return sorted({r.column for r in self.rules})

    def available(self, columns: list[str] | pd.Index) -> bool:
        """Whether a data set has the fields this model reads (at least one fit and one engagement)."""
        present = set(columns)
        parts = {r.part for r in self.rules if r.column in present}
        return parts == {"fit", "engagement"}

    def _hits(self, rule: Rule, series: pd.Series) -> np.ndarray:
        ph = frozenset(self.placeholders)
        if rule.op in {"in", "not_in"}:
            wanted = {canonical_category(v) for v in rule.value}
            hit = map_unique(series, lambda v: float(canonical_category(v, ph) in wanted))
            hit = hit.astype(bool)
            if rule.op == "not_in":
                present = ~np.isnan(map_unique(series, lambda v: _present(v, ph)))
                hit = present & ~hit
            return hit
        number = map_unique(series, lambda v: to_number(v, ph))
        with np.errstate(invalid="ignore"):
            if rule.op == "between":
                low, high = rule.value
                return (number >= low) & (number <= high)
            value = float(rule.value)
            return {
                ">=": number >= value,
                ">": number > value,
                "<=": number <= value,
                "<": number < value,
                "==": number == value,
            }[rule.op]

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Fit, engagement and total points and the MQL flag for each lead."""
        fit = np.zeros(len(frame))
        engagement = np.zeros(len(frame))
        for rule in self.rules:
            if rule.column not in frame.columns:
                continue
            hits = self._hits(rule, frame[rule.column])
            if rule.part == "fit":
                fit += rule.points * hits
            else:
                engagement += rule.points * hits
        total = fit + engagement
        mql = (total >= self.mql_points) & (fit >= self.min_fit_points)
        return pd.DataFrame(
            {"fit_points": fit, "engagement_points": engagement, "points": total, "mql": mql},
            index=frame.index,
        )

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Points for one lead given as a mapping (the service's cold-start path)."""
        frame = pd.DataFrame([{k: record.get(k) for k in self.columns}])
        row = self.score(frame).iloc[0]
        return {
            "fit_points": float(row["fit_points"]),
            "engagement_points": float(row["engagement_points"]),
            "points": float(row["points"]),
            "mql": bool(row["mql"]),
        }

    def explain_record(self, record: Mapping[str, Any]) -> list[tuple[str, float]]:
        """The rules a lead met, with their points."""
        frame = pd.DataFrame([{k: record.get(k) for k in self.columns}])
        return [
            (rule.name, rule.points)
            for rule in self.rules
            if rule.column in frame.columns and bool(self._hits(rule, frame[rule.column])[0])
        ]


def _present(value: Any, ph: frozenset[str]) -> float:
    return math.nan if canonical_category(value, ph) is None else 1.0


def load_rules(name_or_path: str | Path = "b2b-default") -> PointsModel:
    """Load a points model by path or by name (``configs/rules/<name>.yaml``)."""
    path = find_config("rules", str(name_or_path))
    try:
        return PointsModel.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise UserError(validation_message(path, exc)) from exc
