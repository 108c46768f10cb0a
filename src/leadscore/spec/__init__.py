"""The dataset spec: how to read one CRM export (its id, label, time, fields, activity log, status
history, segments), as typed models loaded from YAML. Runtime settings are ``config.py``'s."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadscore.config import DEFAULT_PLACEHOLDERS, SHIPPED_CONFIGS, find_config, read_yaml, validation_message
from leadscore.errors import UserError, not_a_date
from leadscore.spec.accounts import AccountAggregation, AccountsSpec, check_scopes
from leadscore.spec.activity import (
    AGGREGATIONS,
    ANY,
    EVENT_KINDS,
    GROUP_KINDS,
    ONE_LOG,
    ActivityColumns,
    Aggregation,
    EventLog,
    activity_columns,
    definitions_by_log,
    logs_of,
    parse_definitions,
    read_columns,
)
from leadscore.spec.reasons import OwnReasons
from leadscore.spec.templates import template_problem

__all__ = [  # what the rest of the project imports from the spec (its activity part lives in activity.py)
    "AGGREGATIONS",
    "ANY",
    "GROUP_KINDS",
    "AccountAggregation",
    "AccountsSpec",
    "EVENT_KINDS",
    "ONE_LOG",
    "ActivityColumns",
    "Aggregation",
    "DatasetSpec",
    "EventLog",
    "LabelRule",
    "MomentRule",
    "SegmentRule",
    "StageLog",
    "WritebackTarget",
    "load_spec",
    "norm_label",
    "parse_definitions",
    "read_columns",
    "spec_from_flags",
]


class LabelRule(BaseModel):
    """Which column holds the outcome and which of its values count as SQL, or, for a folder with a
    status history, which stages count as SQL when reached within ``within_days`` of the scoring time."""

    model_config = ConfigDict(extra="forbid")

    column: str = "reached_sql"
    positive: list[Any] = Field(default_factory=lambda: [1])
    negative: list[Any] | None = None
    description: str = ""
    stages: list[str] | None = None  # reaching any of these after the scoring time counts as SQL
    within_days: float = 90
    # A flat export's column with when the lead reached the label's stage (HubSpot's "Became a Sales
    # Qualified Lead Date", Salesforce's ConvertedDate): its time to SQL, for the time head. Filled in
    # after the outcome, so never a feature.
    reached_at: str | None = None
    # A flat export's lifecycle date columns (HubSpot's "Became a Sales Qualified Lead Date", "Became
    # an Opportunity Date"): SQL when any falls after the scoring time and within ``within_days``; a
    # lead already past one when scored has no label (left out, counted). No label column needed.
    date_columns: list[str] | None = None

    @model_validator(mode="after")
    def _stages_give_a_two_class_label(self) -> LabelRule:
        """A label made by leadscore (from stages or dates) is 0/1 within a positive window."""
        for key, named in (("stages", self.stages), ("date_columns", self.date_columns)):
            if named is None:
                continue
            if not named:
                raise ValueError(f"'{key}' must name at least one {'stage' if key == 'stages' else 'column'}")
            if self.within_days <= 0:
                raise ValueError("'within_days' must be above 0")
            if self.negative is None:
                self.negative = [0]
        return self

    def is_positive(self, value: Any) -> bool:
        return norm_label(value) in {norm_label(v) for v in self.positive}


def norm_label(value: Any) -> str:
    text = str(value).strip().casefold()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else str(number)


class StageLog(BaseModel):
    """The lifecycle / status history's own column names."""

    model_config = ConfigDict(extra="forbid")

    id: str
    time: str
    stage: str
    # Only the rows whose columns hold these values (trimmed, case ignored) are stage changes: a
    # field history of every field (Salesforce's LeadHistory) says `where: {Field: Status}`.
    where: dict[str, str | list[str]] = Field(default_factory=dict)

    def columns(self) -> dict[str, str]:
        """The columns its keys name, by key (``id``, ``time``, ``stage``)."""
        return {"id": self.id, "time": self.time, "stage": self.stage}

    def wanted(self) -> dict[str, set[str]]:
        """``where`` with each column's values folded as the rows' values are compared."""
        return {
            col: {v.strip().casefold() for v in ([values] if isinstance(values, str) else values)}
            for col, values in self.where.items()
        }


class MomentRule(BaseModel):
    """Several scoring moments per lead: every entry into one of ``stages`` (from the status history)
    is a moment of its own, scored with its features and labelled from that moment."""

    model_config = ConfigDict(extra="forbid")

    stages: list[str] = Field(min_length=1)


class WritebackTarget(BaseModel):
    """Where scores go in one CRM: its object, its id column, score column -> field, and text lengths."""

    model_config = ConfigDict(extra="forbid")

    object: str | None = None  # Salesforce's object (Lead, Contact); HubSpot's (contacts)
    id: str | None = None  # the import file's id column: Salesforce's Id, HubSpot's Record ID
    fields: dict[str, str] = Field(default_factory=dict)  # p_sql -> Lead_Score__c ...
    lengths: dict[str, int] = Field(default_factory=dict)  # a text field's length: longer text is cut


MIN_SEGMENT_CLASS = 40  # a segment model needs this many SQL and non-SQL leads (the small-data rule)


class SegmentRule(BaseModel):
    """How leads fall into segments (regions, product lines, business units), each of which may get
    its own model and cutoff: one column, or a few combined (``by: [region, product]``)."""

    model_config = ConfigDict(extra="forbid")

    by: list[str]
    min_leads: int = Field(0, ge=0)  # fewer labelled leads than this: the segment uses the global model
    # fewer SQL (or non-SQL) leads than this: the global model (never below the small-data rule)
    min_sql: int = Field(MIN_SEGMENT_CLASS, ge=MIN_SEGMENT_CLASS)

    @field_validator("by", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sane(self) -> SegmentRule:
        if not self.by or any(not str(c).strip() for c in self.by):
            raise ValueError("'by' must name at least one column")
        if len(set(self.by)) != len(self.by):
            raise ValueError("'by' names a column twice")
        return self


class DatasetSpec(BaseModel):
    """What a CRM export looks like: id, label rule, time, fields, exclusions, placeholders."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    extends: str | None = None  # the spec underneath, as its file named it (merged in by ``spec_document``)
    id: str | None = None
    email: str | None = None
    label: LabelRule
    time: str | None = None
    # ``time`` given as a list (``time: [Became a Marketing Qualified Lead Date, Create Date]``): the
    # first column that is filled is the scoring moment; ``time`` keeps the first, these the others.
    time_also: list[str] = Field(default_factory=list)
    fit: list[str] = Field(default_factory=list)
    engagement: list[str] | dict[str, Aggregation] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    dates: list[str] = Field(default_factory=list)
    exclude: dict[str, str] = Field(default_factory=dict)
    placeholders: list[str] = Field(default_factory=lambda: list(DEFAULT_PLACEHOLDERS))
    ranges: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    aliases: dict[str, dict[str, str]] = Field(default_factory=dict)
    rules: str | None = None
    reasons: dict[str, dict[str, str]] = Field(default_factory=dict)
    respond_fast_when: list[str] = Field(default_factory=list)
    source: str | None = None  # lead source or channel: the monitor ranks it by SQL share
    display: list[str] = Field(default_factory=list)  # shown to people (name, company, owner), never learned
    event_labels: dict[str, str] = Field(default_factory=dict)  # event types in people's words
    reject_reasons: OwnReasons = Field(default_factory=list)  # a team's own, beside the standard five
    # true: the generator's log; the columns of a CRM's own log; or several named logs (spec/activity.py)
    events: bool | EventLog | dict[str, EventLog] = False
    tables: dict[str, str] = Field(default_factory=dict)  # a data folder: the file stem of each table
    stages: StageLog | None = None  # the status history, for labels from stages
    segments: SegmentRule | None = None  # one model and cutoff per segment where the data says so
    # Every entry into these stages is a scoring moment (a recycled lead that becomes an MQL again is
    # scored again); unset: one moment per lead, its ``time``.
    moments: MomentRule | None = None
    # The day the export was taken: a lead whose label window ends after it is open (unknown). Unset:
    # the latest time found in the data (data/maturity.py).
    observed_until: datetime | date | None = None
    # Scores back into a CRM (``leadscore writeback --to salesforce|hubspot``): per CRM, its mapping
    # over the shipped defaults (scoring/writeback.py).
    writeback: dict[str, WritebackTarget] = Field(default_factory=dict)
    # Accounts (spec/accounts.py): leads matched to their account, accounts scored at moments for
    # P(opportunity), buying-group roles and the account's engagement.
    accounts: AccountsSpec | None = None
    # An account model's own spec (its rows are accounts at moments): the dataset spec its accounts,
    # leads and activity are read through, so scoring rebuilds the accounts from a folder.
    account_of: DatasetSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _time_list(cls, data: Any) -> Any:
        """``time`` may list columns: the first that is filled is each lead's scoring moment."""
        if isinstance(data, dict) and isinstance(data.get("time"), list):
            columns = [str(c) for c in data["time"]]
            if not columns:
                raise ValueError("'time' must name at least one column")
            data = {**data, "time": columns[0], "time_also": [*columns[1:], *data.get("time_also", [])]}
        return data

    @field_validator("events", mode="before")
    @classmethod
    def _one_form(cls, value: Any) -> Any:
        """One log (``{id, time, type}``) or named logs, each read as its own form (so an error names
        the log and the key, not a branch of the union)."""
        if not isinstance(value, dict):
            return value
        if "time" in value and not isinstance(value["time"], dict):
            return EventLog.model_validate(value)
        logs = {}
        for name, log in value.items():
            try:
                logs[str(name)] = EventLog.model_validate(log)
            except ValidationError as exc:  # named: which log, which key
                first = exc.errors()[0]
                where = ".".join(str(p) for p in (name, *first["loc"]))
                raise ValueError(f"{where}: {first['msg']}") from None
        return logs

    @field_validator("reasons")
    @classmethod
    def _templates(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for field_name, phrases in value.items():
            for kind, text in phrases.items():
                problem = template_problem(kind, text)
                if problem:
                    raise ValueError(f"'{field_name}.{kind}': {problem}")
        return value

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in value.strip().lower())
        if not cleaned:
            raise ValueError("name must not be empty")
        return cleaned

    @property
    def features(self) -> list[str]:
        return [*self.fit, *[c for c in self.engagement if c not in self.fit]]

    @property
    def declared(self) -> dict[str, Aggregation]:
        """Engagement features declared as aggregations over the lead's own activity (empty for
        columns; ``scope: account`` ones are ``declared_account``)."""
        if not isinstance(self.engagement, dict):
            return {}
        return {name: d for name, d in self.engagement.items() if not d.account_scope}

    @property
    def definitions(self) -> dict[str, Aggregation]:
        """Every declared engagement definition, the lead's own and ``scope: account`` ones."""
        return dict(self.engagement) if isinstance(self.engagement, dict) else {}

    @property
    def declared_account(self) -> dict[str, Aggregation]:
        """The lead features with ``scope: account``: rolled up over the lead's account."""
        if not isinstance(self.engagement, dict):
            return {}
        return {name: d for name, d in self.engagement.items() if d.account_scope}

    @model_validator(mode="after")
    def _scopes(self) -> DatasetSpec:
        """Group kinds and ``role`` need ``scope: account`` (spec/accounts.py: ``check_scopes``)."""
        check_scopes(self.definitions, self.accounts)
        return self

    @model_validator(mode="after")
    def _generator_log(self) -> DatasetSpec:
        """``events: true`` (older specs) names the generator's activity log: its columns, and the
        roll-ups its shipped spec declares for the engagement fields listed here."""
        if self.events is not True:
            return self
        shipped = read_yaml(SHIPPED_CONFIGS / "datasets" / "synthetic.yaml")
        self.events = EventLog.model_validate(shipped["events"])
        definitions = parse_definitions(shipped["engagement"])
        if isinstance(self.engagement, list) and self.engagement and set(self.engagement) <= set(definitions):
            self.engagement = {name: definitions[name] for name in self.engagement}
        return self

    @model_validator(mode="after")
    def _display_only(self) -> DatasetSpec:
        """A ``display`` field is shown, never learned: not also a feature."""
        learned = {*self.fit, *self.categorical, *self.dates, *self.features}
        for i, column in enumerate(self.display):
            if column in learned:
                raise ValueError(
                    f"display[{i}]: '{column}' is also a feature; display fields are never learned"
                )
        return self

    @model_validator(mode="after")
    def _logs_named(self) -> DatasetSpec:
        """A definition's ``log`` names one of the logs."""
        definitions_by_log(self.declared, self.logs)
        return self

    def table(self, kind: str) -> str:
        """The file stem of one of a data folder's tables (``leads``, ``events``, ``stages``)."""
        return self.tables.get(kind, kind)

    @property
    def logs(self) -> dict[str, EventLog]:
        """The activity logs by name (one log is named ``events``)."""
        return logs_of(self.events)

    @property
    def activity(self) -> ActivityColumns | None:
        """The activity table's columns as the engine reads them (None: no activity log)."""
        return activity_columns(self.events)

    def log_table(self, name: str) -> str:
        """The file stem of one activity log: its ``table``, else ``tables.events`` for the one log,
        else the log's name."""
        log = self.logs[name]
        if log.table:
            return log.table
        return self.table(ONE_LOG) if isinstance(self.events, EventLog) else self.tables.get(name, name)

    def log_of(self) -> dict[str, str]:
        """Each declared feature's log (the one it names, else the first)."""
        return definitions_by_log(self.declared, self.logs)

    def digest(self) -> str:
        dumped = self.model_dump(mode="json")
        # keys added later: left out while unset, so older specs' digests are unchanged
        for key in (
            "segments",
            "observed_until",
            "time_also",
            "extends",
            "writeback",
            "moments",
            "accounts",
            "account_of",
            "display",
            "event_labels",
            "reject_reasons",
        ):
            if not dumped.get(key):
                dumped.pop(key, None)
        if dumped.get("stages") and not dumped["stages"].get("where"):
            dumped["stages"].pop("where", None)
        for key in ("reached_at", "date_columns"):  # keys added later: older specs' digests unchanged
            if dumped["label"].get(key) is None:
                dumped["label"].pop(key, None)
        _drop_unset(dumped.get("engagement"), ("log", *AGGREGATION_LATER))
        events = dumped.get("events")
        _drop_unset({"": events} if isinstance(self.events, EventLog) else events, EVENT_LOG_LATER)
        payload = json.dumps(dumped, sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


AGGREGATION_LATER = ("contacts", "roles", "new_contacts", "role", "scope")  # a definition's keys added later
EVENT_LOG_LATER = ("email", "type_value", "table", "optional", "join")  # an activity log's keys added later


def _drop_unset(entries: Any, keys: tuple[str, ...]) -> None:
    """In a dumped mapping of mappings, the ``keys`` left unset are removed (a spec's digest)."""
    if not isinstance(entries, dict):
        return
    for entry in entries.values():
        if isinstance(entry, dict):
            for key in keys:
                if entry.get(key) in (None, False):
                    entry.pop(key, None)


MAX_EXTENDS = 8  # a chain of specs extending one another deeper than this is a mistake


def load_spec(name_or_path: str) -> DatasetSpec:
    """Load a dataset spec by path or by name (``configs/datasets/<name>.yaml``), with what it
    ``extends`` underneath."""
    path = find_config("datasets", name_or_path)
    try:
        return DatasetSpec.model_validate(spec_document(path))
    except ValidationError as exc:
        raise UserError(validation_message(path, exc)) from exc


def spec_document(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A spec file's keys over those of the spec it ``extends`` (a shipped name, or a path relative to
    the file): mappings merge key by key (a key set to null is removed), anything else is replaced.
    A relative ``rules`` path is read from the folder of the file that names it."""
    data = read_yaml(path)
    if isinstance(data.get("rules"), str) and not Path(data["rules"]).is_absolute():
        data["rules"] = str((path.parent / data["rules"]).resolve())
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise UserError(f"{path}: spec key 'extends': give a shipped spec's name or a spec file's path")
    local = path.parent / parent
    try:
        base_path = local if local.is_file() else find_config("datasets", parent)
    except UserError:
        raise UserError(
            f"{path}: spec key 'extends': no spec '{parent}' (a shipped name or a path)"
        ) from None
    if base_path.resolve() in {p.resolve() for p in (*chain, path)} or len(chain) >= MAX_EXTENDS:
        raise UserError(f"{path}: spec key 'extends': '{parent}' leads back to this spec (a loop)")
    return {**merged(spec_document(base_path, (*chain, path)), data), "extends": parent}


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merged key by key, a key set to null removed."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif (
            isinstance(value, dict) and isinstance(out.get(key), dict) and not _new_form(key, out[key], value)
        ):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def _new_form(key: str, base: dict[str, Any], over: dict[str, Any]) -> bool:
    """``events`` changing between one log (``{id, time, type}``) and named logs is replaced whole."""
    return key == "events" and isinstance(base.get("time"), str) != isinstance(over.get("time"), str)


def rename(spec: DatasetSpec, name: str) -> DatasetSpec:
    """The same spec under another dataset name (``train --name``), checked like a spec's own name."""
    try:
        return DatasetSpec.model_validate({**spec.model_dump(), "name": name})
    except ValidationError as exc:
        raise UserError(f"--name: {exc.errors()[0]['msg']}") from exc


def observed(spec: DatasetSpec, observed_until: str | None) -> DatasetSpec:
    """The spec with the export day given on the command line (``--observed-until``), checked."""
    if observed_until is None:
        return spec
    try:
        return DatasetSpec.model_validate({**spec.model_dump(), "observed_until": observed_until})
    except ValidationError as exc:
        raise not_a_date("--observed-until", observed_until) from exc


def spec_from_flags(
    name: str,
    label: str,
    positive: list[str] | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    exclude: list[str] | None = None,
) -> DatasetSpec:
    """A spec for any CRM export described only by command-line flags."""
    return DatasetSpec(
        name=name,
        id=id_col,
        label=LabelRule(column=label, positive=list(positive or ["1"])),
        time=time_col,
        exclude={c: "excluded on the command line" for c in exclude or []},
    )
