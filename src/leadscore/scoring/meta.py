"""Typed model metadata: what a bundle knows about itself (stored as ``bundle.json``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from leadscore.scoring.contract import CutoffContract

Number = int | float | None


class Registered(BaseModel):
    """The MLflow registry identity of the model answering (set when it came from the registry)."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    run_id: str | None = None
    aliases: list[str] = Field(default_factory=list)


class CutoffFacts(BaseModel):
    """The signed contract and what it meant on held-out leads at training time."""

    model_config = ConfigDict(extra="allow")

    contract: CutoffContract
    threshold: float | None = None
    policy: str | None = None
    contract_version: str | None = None
    review_by: str | None = None
    expected_mql_share: float | None = None
    expected_sql_rate: float | None = None
    expected_recall: float | None = None
    model_expected_sql_rate: float | None = None
    mql_count_test: int | None = None  # MQLs among the leads the promise was measured on
    measured_on: str | None = None  # which leads: the test leads, or out-of-fold scores of all of them
    points_model_sql_rate_at_same_volume: float | None = None
    weekly_lead_volume: float | None = None
    expected_mql_per_week: float | None = None
    confidence: float | None = None
    # 90% bootstrap intervals over the calibration leads: how far the promise can move
    expected_mql_share_interval: list[float] | None = None
    expected_sql_rate_interval: list[float] | None = None
    notes: list[str] = Field(default_factory=list)
    # Said plainly when the threshold does not keep the contract's rate on the test leads, or when
    # the bar is too loose (over 40% of leads MQL, or an MQL->SQL rate under 20%).
    warnings: list[str] = Field(default_factory=list)

    def review_warning(self, today: date | None = None) -> str | None:
        """The overdue-review warning of the contract, or None (one rule for service, monitor, reports)."""
        return self.contract.review_warning(today)

    @property
    def promised_sql_rate(self) -> float | None:
        """The MQL->SQL rate promised: the contract's minimum, else what training expected at the cutoff."""
        return self.contract.min_sql_rate or self.expected_sql_rate


class CardFacts(BaseModel):
    """What the model card shows, kept in the bundle so any exported model can produce its card."""

    model_config = ConfigDict(extra="allow")

    data: dict[str, Any] = Field(default_factory=dict)
    reliability: list[dict[str, Any]] = Field(default_factory=list)
    gains: dict[str, list[float]] = Field(default_factory=dict)
    importance: dict[str, float] = Field(default_factory=dict)
    leakage: list[dict[str, Any]] = Field(default_factory=list)
    trees: int | None = None
    notes: list[str] = Field(default_factory=list)


class SegmentModel(BaseModel):
    """One segment of a routing bundle: which model scores its leads, why, and its own cutoff."""

    model_config = ConfigDict(extra="allow")

    name: str  # the segment as people write it (the most common spelling in the training data)
    model: str  # "segment" (its own booster) or "global"
    why: str = ""
    booster: str | None = None  # the booster's file in the bundle folder (segment models)
    calibrator: dict[str, Any] | None = None
    threshold: float
    grade_edges: dict[str, list[float]] | None = None
    group_pure: bool | None = None
    cutoff: CutoffFacts | None = None
    metrics: dict[str, Number] = Field(default_factory=dict)
    reliability: list[dict[str, Any]] = Field(default_factory=list)


class SegmentRouting(BaseModel):
    """How a bundle routes leads: the segment columns, how their values are read, and the segments
    seen at training time (keyed by their canonical value). Unknown or missing: the global model."""

    model_config = ConfigDict(extra="allow")

    by: list[str]
    placeholders: list[str] = Field(default_factory=list)
    aliases: dict[str, dict[str, str]] = Field(default_factory=dict)
    models: dict[str, SegmentModel] = Field(default_factory=dict)


class BundleMeta(BaseModel):
    """Everything about a trained model except its trees: encoder, calibrator, cutoff, evidence."""

    model_config = ConfigDict(extra="allow")

    format: int = 1
    name: str
    version: str = "draft"
    encoder: dict[str, Any]
    calibrator: dict[str, Any]
    threshold: float
    spec: dict[str, Any]
    grade_edges: dict[str, list[float]]
    grade_bands: dict[str, list[str]] = Field(default_factory=dict)
    reasons: dict[str, dict[str, str]] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    num_threads: int = 2
    group_pure: bool = False
    cutoff: CutoffFacts
    metrics: dict[str, Number] = Field(default_factory=dict)
    baselines: dict[str, dict[str, Number]] = Field(default_factory=dict)
    leakage_suspects: list[str] = Field(default_factory=list)
    excluded_columns: dict[str, str] = Field(default_factory=dict)
    card: CardFacts = Field(default_factory=CardFacts)
    registered: Registered | None = None
    segments: SegmentRouting | None = None  # set: the bundle routes each lead by its segment
    # set: a time-to-SQL head (time_booster.txt) and what it measured on the test leads
    time_head: dict[str, Any] | None = None
    # set: what the shipped model learned from (every labelled lead when finalized) and how
    learned_from: dict[str, Any] | None = None

    @property
    def model_version(self) -> str:
        """``name/version`` in the registry when registered, else the bundle's own content version."""
        if self.registered is not None:
            return f"{self.registered.name}/{self.registered.version}"
        return self.version

    @property
    def cutoff_version(self) -> str:
        return self.cutoff.contract.version or "unversioned"

    def to_json(self) -> str:
        payload = self.model_dump(mode="json")
        for key in ("registered", "segments", "time_head", "learned_from"):
            if payload.get(key) is None:
                payload.pop(key, None)
        return json.dumps(payload, indent=1, sort_keys=True)
