"""Checking a lead as the CRM sends it: strict about wrong types, forgiving about what CRMs send."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from leadscore.features import canonical_category, parse_date
from leadscore.features.rollups import rollups_for_lead
from leadscore.features.values import MAX_MAGNITUDE, id_problem, lead_key
from leadscore.scoring.account_request import (
    ACCOUNT_KEY,
    AccountRequestError,
    alone,
    read_account_body,
    scope_values,
    with_lead,
)
from leadscore.scoring.answer import RECENT_KEY
from leadscore.scoring.bundle import ModelBundle
from leadscore.spec import ANY

MAX_TEXT = 1000
EVENTS_KEY = "events"
MAX_EVENTS = 10_000
NUMERIC_TEXT = re.compile(r"^\s*[-+]?(\d[\d,_]*)?\.?\d+([eE][-+]?\d+)?\s*$")
MEMO_SIZE = 100_000
SHAPES = 1_000  # distinct sets of keys remembered
_UNSEEN = object()


class _Refused:
    """A remembered refusal of a (field, value)."""

    __slots__ = ("error",)

    def __init__(self, error: LeadError) -> None:
        self.error = error


class LeadError(ValueError):
    """A lead the service cannot score (a wrong type); the message names the field."""

    def __init__(self, field_name: str | None, message: str) -> None:
        self.field = field_name
        self.detail = message
        super().__init__(f"field '{field_name}': {message}" if field_name else message)


class ImpossibleValue(LeadError):
    """A value of the right type that cannot be true (negative count, out of range, not finite):
    scored as a missing value with a warning, exactly as training and batch scoring treat it."""


@dataclass
class CheckedLead:
    record: dict[str, Any]
    lead_id: Any
    warnings: list[str] = field(default_factory=list)


class LeadChecker:
    """Validates leads against the bundle's fields, prepared once at load time."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        enc = bundle.encoder
        self.kinds = {f.name: f.kind for f in enc.fields}
        self.ranges = {f.name: (f.low, f.high) for f in enc.fields if f.low is not None or f.high is not None}
        self.placeholders = frozenset(p.casefold() for p in enc.placeholders)
        self.id_field = bundle.spec.id
        self.time_field = enc.time_col
        self.time_also = list(bundle.spec.time_also) if self.time_field else []  # time given as a list
        self.known = set(self.kinds) | {c for c in (self.id_field, self.time_field, *self.time_also) if c}
        # A model with declared engagement also takes a lead with its recent activity ("events").
        spec = bundle.spec
        self.declared = spec.declared
        self.logs = list(spec.logs)
        if self.declared and self.logs:
            self.known.add(EVENTS_KEY)
        # ... and its account (the body /v1/accounts/score takes): its scope: account features.
        self.account_scope = bool(spec.declared_account) and spec.accounts is not None and bool(self.logs)
        if spec.accounts is not None:
            self.known.add(ACCOUNT_KEY)
        self.extra_warning: list[str] = []
        self.categorical = tuple(n for n, kind in self.kinds.items() if kind == "categorical")
        self._other: dict[tuple[str, Any], bool] = {}  # (field, value) -> scored as "other"
        types = {t.strip().casefold() for d in spec.declared.values() for t in d.types}
        self.event_types = frozenset(types - {ANY})
        named = (t for d in spec.declared.values() for t in d.types if t.strip().casefold() != ANY)
        self.near_types = {_letters(t): t for t in named}
        self._memo: dict[tuple[str, type, Any], Any] = {}
        self._shapes: dict[tuple[str, ...], tuple[tuple[str, ...], str | None]] = {}
        # Ids and timestamps are unique per lead: remembering them would only fill the memo.
        self._memoised = frozenset(n for n, kind in self.kinds.items() if kind != "date") - {self.id_field}

    def check(self, lead: Any) -> CheckedLead:
        if not isinstance(lead, dict):
            raise LeadError(None, "a lead must be a JSON object of field names to values")
        record: dict[str, Any] = {}
        warnings = list(self.extra_warning)
        names, unknown = self._shape(lead)
        memo, memoised = self._memo, self._memoised
        for name in names:
            value = lead[name]
            if value is None:
                record[name] = None
                continue
            kind = value.__class__
            if name in memoised and (kind is str or kind is float or kind is int):
                # CRMs send the same few values over and over: check each (field, value) once.
                checked = memo.get((name, kind, value), _UNSEEN)
                if checked is _UNSEEN:
                    checked = self._remember(name, kind, value)
                if checked.__class__ is _Refused:
                    checked = self._refused(name, checked.error, warnings)
                record[name] = checked
                continue
            try:
                record[name] = self._check_value(name, value)
            except ImpossibleValue as exc:
                record[name] = self._refused(name, exc, warnings)
        moment = self.time_field
        if self.time_also and moment and record.get(moment) is None:  # the first listed time that is filled
            record[moment] = next((record[c] for c in self.time_also if record.get(c) is not None), None)
        self._activity(lead, record, warnings)
        if unknown:
            warnings.append(unknown)
        others = self._others(record)
        if others:
            warnings.append(others)
        missing = [n for n in self.kinds if record.get(n) is None]
        if missing:
            warnings.append(f"missing fields treated as missing values: {', '.join(missing)}")
        lead_id = record.get(self.id_field) if self.id_field else None
        return CheckedLead(record=record, lead_id=lead_id, warnings=warnings)

    def _shape(self, lead: dict[str, Any]) -> tuple[tuple[str, ...], str | None]:
        """The fields to check and the unknown-fields warning of a lead's keys, worked out once per
        set of keys (a CRM sends every lead with the same ones)."""
        keys = tuple(lead)
        shape = self._shapes.get(keys)
        if shape is None:
            names = tuple(k for k in keys if k in self.known and k not in (EVENTS_KEY, ACCOUNT_KEY))
            unknown = sorted(str(k) for k in keys if k not in self.known)
            shape = (names, f"ignored unknown fields: {', '.join(unknown[:20])}" if unknown else None)
            if len(self._shapes) >= SHAPES:
                self._shapes.clear()
            self._shapes[keys] = shape
        return shape

    def _remember(self, name: str, kind: type, value: Any) -> Any:
        try:
            checked = self._check_value(name, value)
        except LeadError as exc:
            checked = _Refused(exc)
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[(name, kind, value)] = checked
        return checked

    @staticmethod
    def _refused(name: str, exc: LeadError, warnings: list[str]) -> None:
        """A remembered refusal: a wrong type is raised again (422); an impossible value is missing."""
        if not isinstance(exc, ImpossibleValue):
            raise LeadError(exc.field, exc.detail)
        warnings.append(f"{exc} treated as a missing value")
        return None

    def _activity(self, lead: dict[str, Any], record: dict[str, Any], warnings: list[str]) -> None:
        """The lead's declared engagement from its ``events`` and its ``scope: account`` features
        (from its ``account``), into ``record``."""
        if EVENTS_KEY in lead and EVENTS_KEY in self.known:
            record.update(self._from_events(lead[EVENTS_KEY], record))
            record[RECENT_KEY] = lead[EVENTS_KEY]  # the score log keeps the last ones: the lead's timeline
            undeclared = self._undeclared(lead[EVENTS_KEY])
            if undeclared:
                warnings.append(undeclared)
        if self.account_scope and (EVENTS_KEY in lead or ACCOUNT_KEY in lead):
            record.update(self._from_account(lead, record))

    def _others(self, record: dict[str, Any]) -> str | None:
        """The warning naming values the model never learned (scored as "other"), or None."""
        found = []
        cache, encoder = self._other, self.bundle.encoder
        for name in self.categorical:
            value = record.get(name)
            if value is None or value.__class__ not in (str, int, float, bool):
                continue
            other = cache.get((name, value))
            if other is None:
                if len(cache) >= MEMO_SIZE:
                    cache.clear()
                other = cache[(name, value)] = encoder.is_other(name, value)
            if other:
                found.append(f"{name}={_show(value)}")
        if not found:
            return None
        return f"values the model did not learn, scored as other (rare or unseen in training): {', '.join(found)}"

    def _undeclared(self, events: list[dict[str, Any]]) -> str | None:
        """The warning for event types the spec's definitions do not name where that looks like a
        mistake (a CRM sending PAGEVIEW for Page View: the same letters; or no type sent is named
        at all), or None. Other types a definition does not read are ordinary."""
        if not self.event_types:
            return None
        seen = sorted({str(e["type"]) for e in events})
        odd = [t for t in seen if t.strip().casefold() not in self.event_types]
        near = {t: self.near_types.get(_letters(t)) for t in odd}
        meant = [f"{t!r} (the spec names {near[t]!r})" for t in odd if near[t]]
        if meant:
            return f"events: types the spec does not name: {', '.join(meant[:10])}"
        if odd and len(odd) == len(seen):
            shown = ", ".join(repr(t) for t in odd[:10])
            return f"events: none of the types sent is one the spec's definitions name: {shown}"
        return None

    def _from_events(self, events: Any, record: dict[str, Any]) -> dict[str, Any]:
        """The declared engagement of a lead sent with its activity, as of its scoring time (now when
        absent): computed by the same engine as training and batch scoring."""
        if not isinstance(events, list) or len(events) > MAX_EVENTS:
            raise LeadError(EVENTS_KEY, f"expected a JSON array of at most {MAX_EVENTS:,} events")
        for i, event in enumerate(events):
            if not isinstance(event, dict) or "type" not in event or "time" not in event:
                raise LeadError(f"{EVENTS_KEY}[{i}]", "each event needs a 'type' and a 'time'")
            if not isinstance(event["time"], str) or math.isnan(parse_date(event["time"])):
                raise LeadError(f"{EVENTS_KEY}[{i}].time", "not a date and time (use ISO 8601)")
            if event.get("log") is not None and event["log"] not in self.logs:
                raise LeadError(f"{EVENTS_KEY}[{i}].log", f"no such log (logs: {', '.join(self.logs)})")
        try:
            return rollups_for_lead(events, self._scored_at(record), self.bundle.spec)
        except (ValueError, TypeError) as exc:
            raise LeadError(EVENTS_KEY, f"events could not be read ({exc})") from None

    def _scored_at(self, record: dict[str, Any]) -> float:
        """The lead's scoring time (epoch ms): its time field, now when absent."""
        first = self.bundle.encoder.reads_day_first(self.time_field)
        when = parse_date(record.get(self.time_field), first) if self.time_field else math.nan
        return time.time() * 1000 if math.isnan(when) else when

    def _from_account(self, lead: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """The lead's ``scope: account`` features over its account's leads as sent (itself alone
        without one, as training reads a lead without an account), as of its scoring time."""
        spec = self.bundle.spec
        assert self.id_field
        sent = lead.get(ACCOUNT_KEY)
        try:
            body = (
                alone(spec, lead)
                if sent is None
                else with_lead(read_account_body(spec, sent, ACCOUNT_KEY), lead, self.id_field)
            )
            return scope_values(spec, body, self._scored_at(record))
        except AccountRequestError as exc:
            raise LeadError(exc.field, str(exc).split(": ", 1)[1]) from None
        except (ValueError, TypeError) as exc:
            raise LeadError(ACCOUNT_KEY, f"the account's leads could not be read ({exc})") from None

    def _check_value(self, name: str, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            raise LeadError(
                name,
                "expected a single value, got a JSON " + ("object" if isinstance(value, dict) else "array"),
            )
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise LeadError(name, f"text longer than {MAX_TEXT} characters")
        if name == self.id_field:
            problem = id_problem(lead_key(value))
            if problem:
                raise LeadError(name, problem)
            return value
        kind = self.kinds.get(
            name, "date" if name == self.time_field or name in self.time_also else "categorical"
        )
        if kind == "numeric":
            return self._number(name, value)
        if kind == "date":
            if isinstance(value, str) and not value.strip():
                return None
            if math.isnan(parse_date(value, self.bundle.encoder.reads_day_first(name))):
                raise LeadError(name, "not a date (use ISO 8601, dd-mm-yyyy or mm/dd/yyyy)")
            return value
        if canonical_category(value, self.placeholders) is None:
            return None  # "Select", "N/A", "": a placeholder is a missing value
        return value

    def _number(self, name: str, value: Any) -> float | None:
        """A JSON number, or a string that is one as CRMs send them ("1,200"); null or a placeholder is a
        missing value. Other text and booleans are wrong types (422); impossible values are missing."""
        if isinstance(value, str):
            text = value.strip()
            if not text or text.casefold() in self.placeholders:
                return None
            if not NUMERIC_TEXT.match(text):
                raise LeadError(name, f"expected a number, got {_show(value)}")
            number = float(text.replace(",", "").replace("_", ""))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LeadError(name, f"expected a number, got {_show(value)}")
        else:
            number = float(value) if not isinstance(value, int) or abs(value) < 2**1000 else math.inf
        low, high = self.ranges.get(name, (None, None))
        if not math.isfinite(number) or abs(number) > MAX_MAGNITUDE:
            raise ImpossibleValue(name, f"impossible value {_show(value)}")
        if (low is not None and number < low) or (high is not None and number > high):
            raise ImpossibleValue(
                name, f"impossible value {number:g} (allowed {_bound(low)} to {_bound(high)})"
            )
        return number


def _bound(value: float | None) -> str:
    return "any" if value is None else f"{value:g}"


def _letters(text: str) -> str:
    """An event type's letters and digits, case ignored ("PAGEVIEW", "Page View", "page_view" alike)."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def request_schema(bundle: ModelBundle) -> dict[str, Any]:
    """JSON schema of one lead, from the dataset spec (for the OpenAPI document)."""
    props: dict[str, Any] = {}
    if bundle.spec.id:
        props[bundle.spec.id] = {
            "description": "The lead's id in the CRM (echoed back).",
            "type": ["string", "integer", "null"],
        }
    if bundle.encoder.time_col:
        props[bundle.encoder.time_col] = {
            "type": ["string", "null"],
            "description": "Scoring time (ISO 8601); now when absent.",
        }
    placeholders = sorted({p for p in bundle.encoder.placeholders if p})
    for f in bundle.encoder.fields:
        if f.kind == "numeric":
            schema: dict[str, Any] = {
                "anyOf": [
                    {"type": "number"},
                    {"type": "null"},
                    {"type": "string", "pattern": NUMERIC_TEXT.pattern},
                    {"type": "string", "enum": ["", *placeholders]},
                ]
            }
            about = 'a number (or one written as text, e.g. "1,200"); other text or true/false is refused (422), an impossible value is a missing value'
            if f.low is not None or f.high is not None:
                about += f" (allowed {_bound(f.low)} to {_bound(f.high)})"
            schema["description"] = about
        elif f.kind == "date":
            schema = {"type": ["string", "null"], "description": "date (ISO 8601, dd-mm-yyyy or mm/dd/yyyy)"}
        else:
            schema = {"type": ["string", "number", "boolean", "null"]}
            if f.categories:
                schema["examples"] = [f.display.get(c, c) for c in f.categories[:5]]
        props[f.name] = schema
    if bundle.spec.declared and bundle.spec.logs:
        props[EVENTS_KEY] = {
            "type": "array",
            "description": "The lead's recent activity, rolled up as of its scoring time by the spec's definitions.",
            "items": {
                "type": "object",
                "required": ["type", "time"],
                "properties": {
                    "type": {"type": "string"},
                    "time": {"type": "string", "format": "date-time"},
                    "log": {"type": "string", "enum": list(bundle.spec.logs)},
                },
                "additionalProperties": True,
            },
        }
    if bundle.spec.accounts is not None:
        props[ACCOUNT_KEY] = {
            "type": ["object", "null"],
            "description": "The lead's account, as /v1/accounts/score takes it ({'account': {...}, "
            "'leads': [...], 'as_of': ...}; the lead itself is added to its leads): its scope: account "
            "features and, with an account model loaded, the account's answer.",
            "required": ["account"],
            "properties": {
                "account": {"type": "object"},
                "leads": {"type": "array"},
                "as_of": {"type": "string"},
            },
        }
    return {"type": "object", "properties": props, "additionalProperties": True}
