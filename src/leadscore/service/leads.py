"""Checking a lead as the CRM sends it: strict about wrong types, forgiving about what CRMs send."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from leadscore.features import canonical_category, parse_date, to_number
from leadscore.scoring.bundle import ModelBundle

MAX_TEXT = 1000
MEMO_SIZE = 100_000
_UNSEEN = object()


class LeadError(ValueError):
    """A lead the service cannot score; the message names the field."""

    def __init__(self, field_name: str | None, message: str) -> None:
        self.field = field_name
        self.detail = message
        super().__init__(f"field '{field_name}': {message}" if field_name else message)


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
        self.known = set(self.kinds) | {c for c in (self.id_field, self.time_field) if c}
        self.extra_warning: list[str] = []
        self._memo: dict[tuple[str, type, Any], Any] = {}
        # Ids and timestamps are unique per lead: remembering them would only fill the memo.
        self._memoised = frozenset(n for n, kind in self.kinds.items() if kind != "date") - {self.id_field}

    def check(self, lead: Any) -> CheckedLead:
        if not isinstance(lead, dict):
            raise LeadError(None, "a lead must be a JSON object of field names to values")
        record: dict[str, Any] = {}
        unknown = []
        for name, value in lead.items():
            if name not in self.known:
                unknown.append(name)
                continue
            record[name] = self._value(name, value)
        warnings = list(self.extra_warning)
        if unknown:
            warnings.append(f"ignored unknown fields: {', '.join(sorted(unknown)[:20])}")
        missing = [n for n in self.kinds if record.get(n) is None]
        if missing:
            warnings.append(f"missing fields treated as missing values: {', '.join(missing)}")
        lead_id = record.get(self.id_field) if self.id_field else None
        return CheckedLead(record=record, lead_id=lead_id, warnings=warnings)

    def _value(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        if name in self._memoised and isinstance(value, (str, int, float)):
            # CRMs send the same few values over and over: check each (field, value) once.
            key = (name, type(value), value)
            known = self._memo.get(key, _UNSEEN)
            if known is _UNSEEN:
                try:
                    known = self._check_value(name, value)
                except LeadError as exc:
                    known = exc
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = known
            if isinstance(known, LeadError):
                raise LeadError(known.field, known.detail)
            return known
        return self._check_value(name, value)

    def _check_value(self, name: str, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            raise LeadError(
                name,
                "expected a single value, got a JSON " + ("object" if isinstance(value, dict) else "array"),
            )
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise LeadError(name, f"text longer than {MAX_TEXT} characters")
        if name == self.id_field:
            return value
        kind = self.kinds.get(name, "date" if name == self.time_field else "categorical")
        if kind == "numeric":
            return self._number(name, value)
        if kind == "date":
            if isinstance(value, str) and not value.strip():
                return None
            if math.isnan(parse_date(value)):
                raise LeadError(name, "not a date (use ISO 8601, dd-mm-yyyy or mm/dd/yyyy)")
            return value
        if canonical_category(value, self.placeholders) is None:
            return None  # "Select", "N/A", "": a placeholder is a missing value
        return value

    def _number(self, name: str, value: Any) -> float | None:
        if isinstance(value, str) and (not value.strip() or value.strip().casefold() in self.placeholders):
            return None
        number = to_number(value)
        if math.isnan(number):
            raise LeadError(name, f"expected a number, got {_show(value)}")
        low, high = self.ranges.get(name, (None, None))
        if (low is not None and number < low) or (high is not None and number > high):
            raise LeadError(name, f"impossible value {number:g} (allowed {_bound(low)} to {_bound(high)})")
        return number


def _bound(value: float | None) -> str:
    return "any" if value is None else f"{value:g}"


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
    for f in bundle.encoder.fields:
        if f.kind == "numeric":
            schema: dict[str, Any] = {"type": ["number", "string", "null"]}
            if f.low is not None:
                schema["description"] = f"number from {_bound(f.low)} to {_bound(f.high)}"
        elif f.kind == "date":
            schema = {"type": ["string", "null"], "description": "date (ISO 8601, dd-mm-yyyy or mm/dd/yyyy)"}
        else:
            schema = {"type": ["string", "number", "boolean", "null"]}
            if f.categories:
                schema["examples"] = [f.display.get(c, c) for c in f.categories[:5]]
        props[f.name] = schema
    return {"type": "object", "properties": props, "additionalProperties": True}
