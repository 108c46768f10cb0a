"""The cutoff contract: the MQL policy marketing and sales signed, with its quarterly review date."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadscore.config import find_config, read_yaml, validation_message
from leadscore.data.sources import atomic_path
from leadscore.errors import UserError

DEFAULT_CONTRACT = "default"


POLICIES = ("min_sql_rate", "mql_capacity", "probability")


class SegmentPolicy(BaseModel):
    """One segment's own policy in a contract (``segments: {EMEA: {mql_capacity: 120}}``): exactly
    one of the policy values, with its options."""

    model_config = ConfigDict(extra="forbid")

    min_sql_rate: float | None = None
    confidence: float | None = None
    mql_capacity: float | None = None
    weekly_leads: float | None = None
    probability: float | None = None

    @model_validator(mode="after")
    def _one_policy(self) -> SegmentPolicy:
        given = [p for p in POLICIES if getattr(self, p) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(POLICIES)} (got {', '.join(given) or 'none'})")
        return self

    @property
    def policy(self) -> str:
        return next(p for p in POLICIES if getattr(self, p) is not None)


class CutoffContract(BaseModel):
    """A versioned, human-signed MQL policy with its quarterly review date."""

    model_config = ConfigDict(extra="forbid")

    version: str
    policy: Literal["min_sql_rate", "mql_capacity", "probability"]
    min_sql_rate: float | None = None
    confidence: float | None = None  # with min_sql_rate: the rate must hold at this confidence (e.g. 0.9)
    mql_capacity: float | None = None  # leads per week sales can take
    weekly_leads: float | None = None  # needed for mql_capacity when the data has no time column
    probability: float | None = None
    agreed_by: list[str]
    agreed_on: date
    review_by: date
    notes: str = ""
    segments: dict[str, SegmentPolicy] = Field(default_factory=dict)  # per-segment policies
    # the account team's own policy (qualified accounts per week, or the opportunity rate it needs);
    # unset: this contract's policy, read for accounts
    accounts: SegmentPolicy | None = None

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
        if self.confidence is not None and not (0.5 <= self.confidence < 1):
            raise ValueError("'confidence' must be at least 0.5 and below 1")
        if self.review_by < self.agreed_on:
            raise ValueError("'review_by' is before 'agreed_on'")
        if self.accounts is not None:
            try:
                self.for_accounts()
            except ValidationError as exc:
                raise ValueError(
                    f"accounts: {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
                ) from None
        for name, own in self.segments.items():
            try:
                self.for_segment(name, own)
            except ValidationError as exc:
                raise ValueError(
                    f"segments.{name}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
                ) from None
        return self

    def for_accounts(self) -> CutoffContract:
        """The contract the account model is held to: ``accounts``' policy, else this one's."""
        return self.for_segment("", self.accounts) if self.accounts is not None else self

    def for_segment(self, name: str, own: SegmentPolicy | None = None) -> CutoffContract:
        """The contract one segment is held to: its own policy (same version, signatures and review
        date), or this contract's default policy when the contract gives it none."""
        own = own or self.segments.get(name)
        if own is None:
            return self
        fields = self.model_dump(exclude={"segments", "accounts", *POLICIES, "confidence", "weekly_leads"})
        return CutoffContract.model_validate(
            {**fields, **own.model_dump(exclude_none=True), "policy": own.policy}
        )

    def overdue(self, today: date | None = None) -> bool:
        return (today or date.today()) > self.review_by

    def review_warning(self, today: date | None = None) -> str | None:
        """The warning for a contract past its review date, or None.

        Service, monitor and reports all say it in these words, so one method decides it.
        """
        if self.overdue(today):
            return f"cutoff contract {self.version} was due for review on {self.review_by.isoformat()}"
        return None

    def describe(self) -> str:
        if self.policy == "min_sql_rate":
            sure = f" at {self.confidence:.0%} confidence" if self.confidence else ""
            return (
                f"lowest threshold with an expected MQL->SQL rate of at least {self.min_sql_rate:.0%}{sure}"
            )
        if self.policy == "mql_capacity":
            return f"at most {self.mql_capacity:g} MQLs per week"
        return f"fixed probability {self.probability:g}"


def load_contract(name_or_path: str | Path = DEFAULT_CONTRACT) -> tuple[CutoffContract, Path]:
    path = find_config("cutoffs", str(name_or_path))
    try:
        return CutoffContract.model_validate(read_yaml(path)), path
    except ValidationError as exc:
        raise UserError(validation_message(path, exc)) from exc


def contract_dict(contract: CutoffContract) -> dict[str, Any]:
    return contract.model_dump(mode="json")


def write_contract(path: str | Path, **fields: Any) -> CutoffContract:
    """Check a contract's fields and write it as YAML (atomically), ready for ``train --cutoff PATH``."""
    try:
        contract = CutoffContract.model_validate(fields)
    except ValidationError as exc:
        raise UserError(validation_message(Path(path), exc)) from exc
    with atomic_path(path) as tmp:
        tmp.write_text(
            yaml.safe_dump(
                contract.model_dump(
                    mode="json", exclude_none=True, exclude={"segments"} if not contract.segments else None
                ),
                sort_keys=False,
            ),
            encoding="utf-8",
        )
    return contract
