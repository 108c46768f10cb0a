"""What a spec says about accounts (``accounts:``): the accounts table, how leads are matched to
their account, the account's fit fields, its scoring moments, its label (an opportunity within a
window), the buying-group roles read from the leads' own columns, and the engagement rolled up over
all of an account's leads.

An account is scored at moments (every month, week or N days) from its first event on; its label is
an opportunity created after the moment and within ``label.within_days`` (or, with
``label.stages``, any of its leads entering one of them). Every account aggregation is the lead
family (``count``, ``returns``, ... ``last``) over the events of all the account's leads, plus
``contacts`` (distinct leads with such events), ``roles`` (distinct declared roles with such events)
and ``new_contacts`` (leads created in the last N days); any may take ``role`` (that role's leads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadscore.spec.activity import ACCOUNT_SCOPE_KINDS, GROUP_KINDS, Aggregation

EVERY_NAMED = {"month": "month", "week": "week"}  # moments.every's words (else a number of days)


class AccountAggregation(Aggregation):
    """One account engagement definition: the lead family over all the account's leads' events, or
    one of the group kinds; ``role`` keeps that role's leads only. Its scope is the account."""

    @model_validator(mode="after")
    def _no_scope(self) -> AccountAggregation:
        if self.scope is not None:
            raise ValueError("'scope' is for a lead's definitions (an account's are the account's)")
        return self


class AccountMatch(BaseModel):
    """The columns matching reads where a lead names no account: the leads' email and company name,
    the accounts' website (its domain) and company name."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = None  # the leads' email column (its domain against the account's website)
    company: str | None = None  # the leads' company name column
    website: str | None = None  # the accounts' website (or domain) column
    name: str | None = None  # the accounts' company name column (default: ``company``'s name)
    free_mail: list[str] = Field(default_factory=list)  # more free-mail domains (never matched)


class OpportunityTable(BaseModel):
    """The opportunities table's columns: the account it belongs to and when it was created."""

    model_config = ConfigDict(extra="forbid")

    id: str  # the column naming the account
    time: str  # when the opportunity was created


class AccountLabel(BaseModel):
    """An account moment is positive when an opportunity of the account is created after it and
    within ``within_days`` (or, with ``stages``, one of its leads enters one of them)."""

    model_config = ConfigDict(extra="forbid")

    opportunities: OpportunityTable | None = None
    stages: list[str] | None = None
    within_days: float = Field(30, gt=0)
    description: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> AccountLabel:
        if (self.opportunities is None) == (self.stages is None):
            raise ValueError("give exactly one of 'opportunities' ({id, time}) and 'stages' (a list)")
        if self.stages is not None and not self.stages:
            raise ValueError("'stages' must name at least one stage")
        return self


class AccountMoments(BaseModel):
    """When accounts are scored: every ``month`` (the 1st, 00:00 UTC), ``week`` (Mondays) or N days."""

    model_config = ConfigDict(extra="forbid")

    every: str | float = "month"

    @field_validator("every", mode="before")
    @classmethod
    def _month_week_or_days(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("give month, week or a number of days above 0")
        if isinstance(value, int | float):
            if value <= 0:
                raise ValueError("give month, week or a number of days above 0")
            return float(value)
        word = str(value).strip().casefold()
        if word in EVERY_NAMED:
            return EVERY_NAMED[word]
        try:
            days = float(word)
        except ValueError:
            raise ValueError(f"'{value}' is not month, week or a number of days") from None
        if days <= 0:
            raise ValueError("give month, week or a number of days above 0")
        return days


RolePatterns = dict[str, str | list[str]]  # a leads' column -> patterns, as in ``where``


class AccountsSpec(BaseModel):
    """The ``accounts:`` block of a dataset spec."""

    model_config = ConfigDict(extra="forbid")

    id: str  # the accounts table's key
    lead_account: str | None = None  # the leads' column naming their account, where known
    match: AccountMatch = Field(default_factory=AccountMatch)
    fit: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    moments: AccountMoments = Field(default_factory=AccountMoments)
    label: AccountLabel | None = None
    roles: dict[str, RolePatterns] = Field(default_factory=dict)
    engagement: dict[str, AccountAggregation] = Field(default_factory=dict)

    @field_validator("roles")
    @classmethod
    def _roles_name_columns(cls, value: dict[str, RolePatterns]) -> dict[str, RolePatterns]:
        for role, patterns in value.items():
            if not patterns:
                raise ValueError(f"role '{role}' names no column and pattern")
            for column, wanted in patterns.items():
                if not wanted or (isinstance(wanted, list) and not all(str(w).strip() for w in wanted)):
                    raise ValueError(f"role '{role}': column '{column}' has no pattern")
        return value

    @model_validator(mode="after")
    def _roles_declared(self) -> AccountsSpec:
        """A definition's ``role`` names a declared role; ``roles`` counts need some declared."""
        for name, d in self.engagement.items():
            if d.role is not None and d.role not in self.roles:
                known = ", ".join(self.roles) or "none"
                raise ValueError(f"engagement.{name}.role: no role '{d.role}' under 'roles' (roles: {known})")
            if d.kind == "roles" and not self.roles:
                raise ValueError(f"engagement.{name}.roles: no roles are declared under 'roles'")
        return self


def check_scopes(definitions: Mapping[str, Aggregation], accounts: AccountsSpec | None) -> None:
    """A lead's definitions: group kinds and ``role`` need ``scope: account``; that scope needs an
    accounts block, a declared role, and a kind it computes (``ValueError`` naming the key)."""
    for name, d in definitions.items():
        if not d.account_scope:
            if d.kind in GROUP_KINDS or d.role is not None:
                what = f"'{d.kind}'" if d.kind in GROUP_KINDS else "'role'"
                raise ValueError(f"engagement.{name}: {what} reads an account's people: add scope: account")
            continue
        if accounts is None:
            raise ValueError(f"engagement.{name}.scope: 'account' needs an 'accounts' block")
        if d.kind not in ACCOUNT_SCOPE_KINDS or d.half_life_days is not None:
            kinds = ", ".join(ACCOUNT_SCOPE_KINDS)
            raise ValueError(f"engagement.{name}.scope: with scope account use {kinds} (no half_life_days)")
        if d.role is not None and d.role not in accounts.roles:
            raise ValueError(f"engagement.{name}.role: no role '{d.role}' under 'accounts.roles'")
