"""What a spec says about activity: its logs (one, or several named ones) and the engagement
features declared over them.

One log is ``events: {id, time, type}`` (the form every earlier spec uses). Several are a mapping of
named logs, each ``{table, id | email, time, type | type_value}``: a web-activity export, a form
submissions table, a product-usage log keyed by email. Several logs (or one keyed by email, or of
one kind) are read into one activity table with the columns ``ACTIVITY`` names (the lead's id, the
time, the type, and the log each row came from), so one engine computes every declared feature, and a
definition says which log it reads with ``log:``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AGGREGATIONS = (
    "count",
    "returns",
    "distinct_days",
    "days_since_last",
    "days_since_first",
    "sum",
    "mean",
    "min",
    "max",
    "unique",
    "last",
)


ANY = "any"


# Aggregations over event types (the rest aggregate an attribute column of the events).
EVENT_KINDS = ("count", "returns", "distinct_days", "days_since_last", "days_since_first")
GROUP_KINDS = ("contacts", "roles", "new_contacts")  # what only a group of leads (an account) has
ALL_KINDS = (*AGGREGATIONS, *GROUP_KINDS)
# What ``scope: account`` computes on a lead's account as of the lead's own time
ACCOUNT_SCOPE_KINDS = ("count", "returns", "days_since_last", "days_since_first", "sum", "mean", *GROUP_KINDS)


class Aggregation(BaseModel):
    """One declared feature: exactly one aggregation key, and its options."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    count: str | list[str] | None = None
    returns: str | list[str] | None = None  # events after the first in the window (return visits)
    distinct_days: str | list[str] | None = None
    days_since_last: str | list[str] | None = None
    days_since_first: str | list[str] | None = None
    sum: str | None = None
    mean: str | None = None
    min: str | None = None
    max: str | None = None
    unique: str | None = None
    last: str | None = None
    of: str | list[str] = ANY  # for attribute aggregations: which event types (default: any)
    where: dict[str, str | list[str]] = Field(default_factory=dict)
    days: float | None = None
    half_life_days: float | None = None
    log: str | None = None  # which of several activity logs it reads (default: the first)
    # The group kinds (an account's people): in a lead's engagement only with ``scope: account``
    contacts: str | list[str] | None = None  # distinct leads with events of these types
    roles: str | list[str] | None = None  # distinct declared roles with events of these types
    new_contacts: float | None = None  # leads created in the last N days (reads no event)
    role: str | None = None  # only the leads holding this declared role (``accounts.roles``)
    # ``account``: rolled up over the lead's account (the lead included) as of its scoring time
    scope: Literal["lead", "account"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Aggregation:
        given = [k for k in ALL_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(ALL_KINDS)} (got {', '.join(given) or 'none'})")
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
        return next(k for k in ALL_KINDS if getattr(self, k) is not None)

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
        """The attribute column it aggregates (sum, mean, min, max, unique, last)."""
        return None if self.kind in (*EVENT_KINDS, *GROUP_KINDS) else getattr(self, self.kind)

    @property
    def account_scope(self) -> bool:
        return self.scope == "account"

    @property
    def numeric(self) -> bool:
        return self.kind != "last"


def read_columns(definitions: Mapping[str, Aggregation]) -> list[str]:
    """The event columns the definitions read (``where`` and attributes), in order, each once."""
    out: list[str] = []
    for d in definitions.values():
        out += [c for c in [*d.where, *([d.attribute] if d.attribute else [])] if c not in out]
    return out


def parse_definitions(raw: Mapping[str, Any]) -> dict[str, Aggregation]:
    """Definitions from a spec's ``engagement:`` mapping (pydantic errors name the key)."""
    return {str(name): Aggregation.model_validate(value) for name, value in raw.items()}


class LogJoin(BaseModel):
    """A table a log's rows name by id (Salesforce's CampaignMember names its Campaign): its columns
    join each row as ``<table>.<column>`` (``Campaign.Type``), for ``where`` and attributes."""

    model_config = ConfigDict(extra="forbid")

    table: str  # the file stem
    by: str  # the log's column naming the row (not `on`: YAML reads that as true)
    id: str  # the table's id column


class EventLog(BaseModel):
    """One activity log's own column names (each CRM has its own): the lead's ``id`` (or its ``email``,
    joined to the leads by normalised email), the event's ``time``, and its ``type`` (a column, or
    ``type_value`` for a table of one kind: a form submissions table is all form fills)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    email: str | None = None
    time: str
    type: str | None = None
    type_value: str | None = None
    table: str | None = None  # the file stem (default: the log's name; ``tables.events`` for one log)
    # A log some exports lack (HubSpot's page views, Pardot's visitor activity): without its table the
    # log is empty (its features count nothing), and ``validate`` says so.
    optional: bool = False
    join: LogJoin | None = None  # a table its rows name (Campaign for CampaignMember)

    @model_validator(mode="after")
    def _keys(self) -> EventLog:
        if (self.id is None) == (self.email is None):
            raise ValueError("give exactly one of 'id' (the lead's id) and 'email' (joined by email)")
        if (self.type is None) == (self.type_value is None):
            raise ValueError("give exactly one of 'type' (a column) and 'type_value' (one kind of event)")
        return self

    @property
    def plain(self) -> bool:
        """Read as it is: keyed by lead id, with a type column."""
        return self.id is not None and self.type is not None

    def columns(self) -> dict[str, str]:
        """The columns its keys name, by key (``id`` or ``email``, ``time``, ``type``)."""
        named = {"id": self.id, "email": self.email, "time": self.time, "type": self.type}
        return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True)
class ActivityColumns:
    """The activity table's columns as the engine reads them: lead id, time, type (and the log)."""

    id: str
    time: str
    type: str
    log: str | None = None  # the column naming each row's log (several logs), else None


# Several logs, or one that is not plain, are read into one table under these names.
ACTIVITY = ActivityColumns("__lead_id", "__occurred_at", "__event_type", "__log")
ONE_LOG = "events"  # the name of the log of ``events: {id, time, type}``


def logs_of(events: bool | EventLog | Mapping[str, EventLog]) -> dict[str, EventLog]:
    """A spec's activity logs by name (one log is named ``events``)."""
    if isinstance(events, EventLog):
        return {ONE_LOG: events}
    if isinstance(events, Mapping):
        return dict(events)
    return {}


def activity_columns(events: bool | EventLog | Mapping[str, EventLog]) -> ActivityColumns | None:
    """How the engine reads a spec's activity: one plain log as it is, anything else as ``ACTIVITY``."""
    if isinstance(events, EventLog) and events.plain and events.table is None:
        assert events.id is not None and events.type is not None
        return ActivityColumns(events.id, events.time, events.type)
    return ACTIVITY if logs_of(events) else None


def definitions_by_log(
    definitions: Mapping[str, Aggregation], logs: Mapping[str, EventLog]
) -> dict[str, str]:
    """Each definition's log: the one it names, else the first (one line naming a log that is not there)."""
    names = list(logs)
    out: dict[str, str] = {}
    for name, d in definitions.items():
        if d.log is not None and d.log not in logs:
            raise ValueError(
                f"engagement.{name}.log: no log '{d.log}' under 'events' (logs: {', '.join(names) or 'none'})"
            )
        out[name] = d.log or (names[0] if names else ONE_LOG)
    return out
