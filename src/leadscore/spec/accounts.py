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

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadscore.spec.activity import AGGREGATIONS, EVENT_KINDS, Aggregation

GROUP_KINDS = ("contacts", "roles", "new_contacts")  # what only an account (a group of leads) has
ACCOUNT_AGGREGATIONS = (*AGGREGATIONS, *GROUP_KINDS)
EVERY_NAMED = {"month": "month", "week": "week"}  # moments.every's words (else a number of days)


class AccountAggregation(Aggregation):
    """One account engagement definition: the lead family over all the account's leads' events, or
    one of the group kinds; ``role`` keeps that role's leads only."""

    contacts: str | list[str] | None = None  # distinct leads with events of these types
    roles: str | list[str] | None = None  # distinct declared roles with events of these types
    new_contacts: float | None = None  # leads created in the last N days (reads no event)
    role: str | None = None  # only the leads holding this declared role

    @model_validator(mode="after")
    def _one_kind(self) -> AccountAggregation:  # replaces the lead family's check (same name)
        given = [k for k in ACCOUNT_AGGREGATIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(ACCOUNT_AGGREGATIONS)} (got {', '.join(given) or 'none'})"
            )
        if self.days is not None and self.days <= 0:
            raise ValueError("'days' must be above 0")
        if self.new_contacts is not None and self.new_contacts <= 0:
            raise ValueError("'new_contacts' must be a number of days above 0")
        if self.half_life_days is not None:
            if self.half_life_days <= 0:
                raise ValueError("'half_life_days' must be above 0")
            if given[0] not in ("count", "sum"):
                raise ValueError("'half_life_days' goes with count or sum only")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACCOUNT_AGGREGATIONS if getattr(self, k) is not None)

    @property
    def types(self) -> list[str]:
        """The event types it reads (``any`` for all; none for ``new_contacts``)."""
        kind = self.kind
        if kind == "new_contacts":
            return []
        value = getattr(self, kind) if kind in (*EVENT_KINDS, "contacts", "roles") else self.of
        return [value] if isinstance(value, str) else list(value)

    @property
    def attribute(self) -> str | None:
        return None if self.kind in (*EVENT_KINDS, *GROUP_KINDS) else getattr(self, self.kind)


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
