"""Reasons: exact TreeSHAP contributions as percentage points of P(SQL), picked and phrased for a rep."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from leadscore.features import FeatureEncoder, to_number
from leadscore.spec import ANY, GROUP_KINDS, Aggregation

MIN_WEIGHT_PP = 0.05  # weights under this many percentage points are not worth a rep's attention
PHRASE_CACHE = 200_000


@dataclass
class Reason:
    """One field's push on a lead's score, phrased for a sales rep."""

    field: str
    text: str
    weight_pp: float
    group: str

    def to_dict(self) -> dict[str, Any]:
        return _entry(self.field, self.text, self.weight_pp, self.group)


def _entry(field: str, text: str, weight_pp: float, group: str) -> dict[str, Any]:
    """One reason as the API shows it (weight in percentage points, two decimals)."""
    return {"field": field, "text": text, "weight": round(float(weight_pp), 2), "group": group}


def reason_weights(
    contrib: np.ndarray, raw: float | np.ndarray, probability: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Each field's weight in percentage points of P(SQL); they add up to p - p(average lead).

    The lead's distance from the average lead's score is shared out in proportion to the exact
    log-odds contributions: the calibrator's secant slope between the two scores turns log-odds
    into probability. (Removing one field at a time would give 0 on the flat parts of an
    isotonic calibrator, and weights that no longer add up.)
    """
    one = np.ndim(contrib) == 1
    contrib = np.atleast_2d(contrib)
    raw = np.atleast_1d(np.asarray(raw, dtype=np.float64))
    span = contrib.sum(axis=1)
    # the four scores the weights need, through the calibrator in one call (one lead: a quarter of
    # the calls, each mostly fixed cost): the lead, the average lead, and half a log-odds either side
    p, p0, above, below = probability(np.concatenate([raw, raw - span, raw + 0.5, raw - 0.5])).reshape(4, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(np.abs(span) > 1e-9, (p - p0) / span, 0.0)
    # Where the calibrator is flat between the two scores, use its slope around the lead.
    local = above - below
    slope = np.where(slope > 0, slope, np.where(local > 0, local, p * (1 - p)))
    weights = contrib * (slope * 100.0)[:, None]
    return weights[0] if one else weights


class Phraser:
    """Plain-language phrases naming the lead's own value, from the templates in the dataset spec."""

    def __init__(
        self,
        encoder: FeatureEncoder,
        templates: Mapping[str, Mapping[str, str]],
        labels: Mapping[str, str],
        definitions: Mapping[str, Aggregation] | None = None,
        outcome: str = "SQL",  # what the model predicts, in "raises the chance of ..."
        event_labels: Mapping[str, str] | None = None,  # the spec's words for its event types
    ) -> None:
        self.encoder = encoder
        self.outcome = outcome
        self.event_labels = dict(event_labels or {})
        self.templates = {k: dict(v) for k, v in templates.items()}
        self.labels = dict(labels)
        self.definitions = dict(definitions or {})
        self._cache: dict[tuple[str, Any, bool], str] = {}

    def label(self, name: str) -> str:
        """A field's name for people: the spec's label, else (a declared feature) what its
        definition counts, else its column name in words."""
        found = self.labels.get(name)
        if found:
            return found
        definition = self.definitions.get(name)
        if definition is not None:
            return definition_label(definition, self.event_labels)
        return name.replace("_", " ").strip().capitalize()

    def phrase(self, name: str, value: Any, positive: bool) -> str:
        try:
            key = (name, value, positive)
            cached = self._cache.get(key)
        except TypeError:  # an unhashable value: phrase it without the cache
            return self._phrase(name, value, positive)
        if cached is None:
            if len(self._cache) > PHRASE_CACHE:
                self._cache.clear()
            cached = self._cache[key] = self._phrase(name, value, positive)
        return cached

    def _phrase(self, name: str, value: Any, positive: bool) -> str:
        label = self.label(name)
        shown = self.encoder.describe_value(name, value)
        templates = self.templates.get(name, {})
        definition = self.definitions.get(name)
        if definition is not None and not templates:  # the spec's own words win over the definition's
            return definition_phrase(definition, value, self.event_labels)
        if shown is None:
            # a value the lead's data does not give: unknown, never phrased as an observed absence
            template = templates.get("missing") or f"{label}: not given"
        else:
            key = "positive" if positive else "negative"
            template = templates.get(key) or templates.get("any") or _generic(label, positive, self.outcome)
        number = to_number(value)
        return fill(template, value=str(shown), n=fmt_count(number), s=plural(number), label=label)


def _chosen(weights: np.ndarray, k: int) -> tuple[list[list[int]], list[list[float]], list[list[bool]]]:
    """For each lead: up to ``k`` positive then up to ``k`` negative fields (indexes), strongest first
    (stable on ties), their weights, and whether each is a reason at all (strong enough, right sign).
    ``k`` is at most the number of fields."""
    strong = np.abs(weights) >= MIN_WEIGHT_PP
    # Positive weights ranked high to low, then negative ones low to high (stable on ties).
    pos = np.argsort(np.where(strong & (weights > 0), -weights, np.inf), axis=1, kind="stable")[:, :k]
    neg = np.argsort(np.where(strong & (weights < 0), weights, np.inf), axis=1, kind="stable")[:, :k]
    chosen = np.concatenate([pos, neg], axis=1)
    picked = np.take_along_axis(weights, chosen, axis=1)
    valid = np.take_along_axis(strong, chosen, axis=1)
    valid[:, :k] &= picked[:, :k] > 0
    valid[:, k:] &= picked[:, k:] < 0
    return chosen.tolist(), picked.tolist(), valid.tolist()


def _phrased(
    records: Sequence[Mapping[str, Any]],
    weights: np.ndarray,
    k: int,
    fields: Sequence[str],
    phraser: Phraser,
) -> Iterator[list[tuple[bool, int, str, float]]]:
    """Each lead's reasons, strongest first: (a negative one?, field index, phrase, weight)."""
    k = min(k, weights.shape[1])
    phrase = phraser.phrase
    for record, picks in zip(records, _picks(weights, k), strict=True):
        yield [(negative, j, phrase(fields[j], record.get(fields[j]), w > 0), w) for negative, j, w in picks]


def _picks(weights: np.ndarray, k: int) -> list[list[tuple[bool, int, float]]]:
    """For each lead: its reasons as (a negative one?, field index, weight), up to ``k`` positive
    then up to ``k`` negative, strongest first (stable on ties). One lead (the service's hottest
    call) is sorted in Python: the same order, without the array calls' fixed cost."""
    if weights.shape[0] == 1:
        return [_picks_one(weights[0].tolist(), k)]
    chosen, picked, valid = _chosen(weights, k)
    return [
        [(at >= k, j, w) for at, (j, w, ok) in enumerate(zip(cols, ws, oks, strict=True)) if ok]
        for cols, ws, oks in zip(chosen, picked, valid, strict=True)
    ]


def _picks_one(row: list[float], k: int) -> list[tuple[bool, int, float]]:
    """``_picks`` of one lead's weights (``_chosen``'s rule: strong enough, of the right sign)."""
    pos = sorted((j for j, w in enumerate(row) if w >= MIN_WEIGHT_PP), key=lambda j: -row[j])[:k]
    neg = sorted((j for j, w in enumerate(row) if w <= -MIN_WEIGHT_PP), key=row.__getitem__)[:k]
    return [(False, j, row[j]) for j in pos] + [(True, j, row[j]) for j in neg]


def select_reasons(
    records: Sequence[Mapping[str, Any]],
    weights: np.ndarray,
    k: int,
    fields: Sequence[str],
    groups: Sequence[str],
    phraser: Phraser,
) -> list[list[Reason]]:
    """Up to ``k`` positive and ``k`` negative reasons per lead, strongest first.

    The selection is done on the whole weight matrix at once; only the chosen reasons are phrased.
    """
    return [
        [Reason(fields[j], text, w, groups[j]) for _, j, text, w in lead]
        for lead in _phrased(records, weights, k, fields, phraser)
    ]


def api_reasons(
    records: Sequence[Mapping[str, Any]],
    weights: np.ndarray,
    k: int,
    fields: Sequence[str],
    groups: Sequence[str],
    phraser: Phraser,
) -> list[dict[str, list[dict[str, Any]]]]:
    """``reasons_dict(r) for r in select_reasons(...)`` in one pass: the API's reasons of a batch,
    without a ``Reason`` object in between (a 1,000-lead batch has ~10,000 reasons)."""
    out: list[dict[str, list[dict[str, Any]]]] = []
    for lead in _phrased(records, weights, k, fields, phraser):
        sides: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        for negative, j, text, w in lead:
            sides[negative].append(_entry(fields[j], text, w, groups[j]))
        out.append({"positive": sides[0], "negative": sides[1]})
    return out


def reasons_dict(reasons: Sequence[Reason]) -> dict[str, list[dict[str, Any]]]:
    """The API's ``reasons`` object: positive and negative reasons, strongest first (one pass: a
    1,000-lead batch builds 10,000 of these on the request path)."""
    positive: list[dict[str, Any]] = []
    negative: list[dict[str, Any]] = []
    for r in reasons:
        w = r.weight_pp
        if w > 0 or w < 0:  # neither for zero or NaN
            (positive if w > 0 else negative).append(_entry(r.field, r.text, w, r.group))
    return {"positive": positive, "negative": negative}


def _generic(label: str, positive: bool, outcome: str = "SQL") -> str:
    return f"{{label}}: {{value}} ({'raises' if positive else 'lowers'} the chance of {outcome})"


_PLACEHOLDER = re.compile(r"\{(value|n|s|label)\}")


def fill(template: str, **values: str) -> str:
    """A reasons template with its placeholders ({value}, {n}, {s}, {label}) filled. Never
    ``str.format``: a template, a label or a column name from a user's file must not reach an
    object's attributes or ask for a 300 MB padding; anything else in braces stays as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), template)


def fmt_count(number: float) -> str:
    """A count as a person reads it: 1,200 or 2.5; "?" when unknown."""
    if math.isnan(number):
        return "?"
    if 0 < number < 1:
        return "less than 1"
    return f"{number:,.0f}" if float(number).is_integer() or abs(number) >= 10 else f"{number:.1f}"


def plural(number: float) -> str:
    """The "s" of a count's noun: "1 day", "less than 1 day", "3 days", "0 days"."""
    return "" if 0 < number <= 1 else "s"


_SUMMARY = {"sum": "Total", "mean": "Average", "min": "Lowest", "max": "Highest"}


def definition_phrase(d: Aggregation, value: Any, labels: Mapping[str, str] | None = None) -> str:
    """A declared feature's value in words read from its definition, its event types as the spec's
    ``event_labels`` name them (else readable: "PAGE_VIEW" is "Page view"): "Visit Webpage with
    Page URL matching *pricing*: 3 times in the last 7 days"."""
    text = _definition_phrase(d, value, labels or {})
    return text[:1].upper() + text[1:]


def definition_label(d: Aggregation, labels: Mapping[str, str] | None = None) -> str:
    """What a declared feature counts, as a label: "Pricing page view in the last 7 days", "Days
    since last activity", "People with Demo request in the last 30 days"."""
    names = labels or {}
    types = [readable_type(t, names) for t in d.types if t.strip().casefold() != ANY]
    what = " or ".join(types) if types and len(types) == len(d.types) else "activity"
    window = f" in the last {fmt_count(d.days)} days" if d.days is not None else ""
    role = f" ({d.role.replace('_', ' ')})" if d.role else ""
    kind = d.kind
    text = {
        "count": f"{what}{window}",
        "returns": f"Repeat {what}{window}",
        "distinct_days": f"Days with {what}{window}",
        "days_since_last": f"Days since last {what}",
        "days_since_first": f"Days since first {what}",
        "unique": f"Different {d.attribute} values{window}",
        "last": f"Last {d.attribute}",
        "contacts": f"People with {what}{window}" if types else f"People active{window}",
        "roles": f"Buying-group roles active{window}",
        "new_contacts": f"New contacts in the last {fmt_count(d.new_contacts or 0)} days",
    }.get(kind) or f"{_SUMMARY.get(kind, kind)} {d.attribute} in {what}{window}"
    text += role
    if d.account_scope and kind not in GROUP_KINDS:
        text = "At the account: " + text
    return text[:1].upper() + text[1:]


def readable_type(kind: str, labels: Mapping[str, str]) -> str:
    """An event type as people read it: the spec's label, else a code such as PAGE_VIEW or
    form_submit in words ("Page view", "Form submit"); a type already in words stays as written."""
    if kind in labels:
        return labels[kind]
    if "_" in kind or "-" in kind or (kind.isupper() and len(kind) > 3):
        words = " ".join(re.split(r"[_\-\s]+", kind.strip("_- "))).lower()
        return words[:1].upper() + words[1:]
    return kind


def _definition_phrase(d: Aggregation, value: Any, labels: Mapping[str, str]) -> str:
    if d.kind in GROUP_KINDS:
        return group_phrase(d, value, labels)
    if d.account_scope:
        return "At the account: " + _lead_family_phrase(d, value, labels)
    return _lead_family_phrase(d, value, labels)


def group_phrase(d: Aggregation, value: Any, labels: Mapping[str, str] | None = None) -> str:
    """A buying group's count in words: "3 people active in the last 30 days", "No one from finance
    active in the last 30 days", "2 roles of the buying group active", "1 new person in 60 days"."""
    number = to_number(value)
    if math.isnan(number):
        return "No one of the account on record"
    n = fmt_count(number)
    window = f" in the last {fmt_count(d.days)} days" if d.days is not None else ""
    types = [readable_type(t, labels or {}) for t in d.types if t.strip().casefold() != ANY]
    doing = f" with {' or '.join(types)}" if types else " active"
    role = d.role.replace("_", " ") if d.role else None
    if d.kind == "new_contacts":
        days = f"{fmt_count(d.new_contacts or 0)} days"
        who = f" {role}" if role else ""
        if number == 0:
            return f"No new{who} contact in the last {days}"
        return f"{n} new{who} contact{plural(number)} in the last {days}"
    if d.kind == "roles":
        if number == 0:
            return f"No role of the buying group{doing}{window}"
        return f"{n} role{plural(number)} of the buying group{doing}{window}"
    if number == 0:
        return f"No one{f' from {role}' if role else ''}{doing}{window}"
    people = (f"{role}s" if number != 1 else role) if role else ("person" if number == 1 else "people")
    return f"{n} {people}{doing}{window}"


def _lead_family_phrase(d: Aggregation, value: Any, labels: Mapping[str, str]) -> str:
    types = [readable_type(t, labels) for t in d.types if t.strip().casefold() != ANY]
    what = " or ".join(types) if types and len(types) == len(d.types) else "activity"
    where = "".join(
        f" with {column} {'matching ' if any('*' in p for p in _listed(wanted)) else ''}"
        + " or ".join(_listed(wanted))
        for column, wanted in d.where.items()
    )
    window = f" in the last {fmt_count(d.days)} days" if d.days is not None else ""
    number = to_number(value)
    n, s = fmt_count(number), plural(number)
    kind = d.kind
    if kind == "last":
        shown = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        return f"Last {d.attribute}: {shown}" if shown else f"No {d.attribute} on record"
    if math.isnan(number) and kind not in ("days_since_last", "days_since_first"):
        # a count is never missing where activity was read (none is 0): this lead's was not sent
        return f"{what[:1].upper()}{what[1:]}{where}{window}: not known (no activity sent)"
    if math.isnan(number):
        return f"No {what}{where} on record{window}"  # the activity was read: no such event
    if kind in ("days_since_last", "days_since_first"):
        return f"{'Last' if kind == 'days_since_last' else 'First'} {what}{where} {n} day{s} ago"
    if number == 0 and kind in ("count", "returns", "distinct_days", "unique"):
        return f"No {'repeat ' if kind == 'returns' else ''}{what}{where}{window}"
    if kind == "count" and d.half_life_days:
        return f"{what}{where}: {n} (recency-weighted, half-life {fmt_count(d.half_life_days)} days){window}"
    if kind == "count":
        return f"{what}{where}: {n} time{s}{window}"
    if kind == "returns":
        return f"{what}{where} again {n} time{s} after the first{window}"
    if kind == "distinct_days":
        return f"{what}{where} on {n} different day{s}{window}"
    if kind == "unique":
        return f"{n} different {d.attribute} value{s} across {what}{where}{window}"
    return f"{_SUMMARY[kind]} {d.attribute} in {what}{where}{window}: {n}"


def _listed(wanted: str | list[str]) -> list[str]:
    return [wanted] if isinstance(wanted, str) else list(wanted)
