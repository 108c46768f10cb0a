"""The feature encoder: a lead, as a CRM sends it, into one numeric model row.

Batch (``transform``) and single-lead (``encode_record``) encoding call the same scalar value
functions (``leadscore.features.values``), so they cannot disagree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.values import (
    MAX_MAGNITUDE,
    MS_PER_DAY,
    canonical_category,
    clean_text,
    dates_ms,
    map_unique,
    map_unique_rows,
    most_common_spelling,
    parse_date,
    slash_day_first,
    to_number,
    to_numbers,
)

_MS_PER_DAY = MS_PER_DAY
OTHER = "__other__"
SHARE_SUFFIX = "__share"
# A categorical field with at least this many values held by two or more fit rows also gets its value's
# share of the fit rows as a number: trees can then split common from rare values, and tell the rare
# values pooled as "other" apart (measured on hidden splits: docs/performance.md, "value shares").
SHARE_MIN_VALUES = 3
SHARE_MIN_COUNT = 2  # a value held by fewer fit rows reads as share 0, like an unseen one
SHARE_MAX_VALUES = 2_000  # the most common values kept per field (a long tail's rest reads as 0)
_ENGAGEMENT_HINTS = (
    "visit",
    "page",
    "click",
    "open",
    "activity",
    "download",
    "webinar",
    "email",
    "time spent",
    "session",
    "view",
    "event",
    "engage",
    "demo",
    "pricing",
    "form",
)


def guess_group(column: str) -> str:
    """Fit or engagement, guessed from a column's name when no spec says."""
    lowered = column.casefold()
    return "engagement" if any(h in lowered for h in _ENGAGEMENT_HINTS) else "fit"


@dataclass
class FieldInfo:
    """How one CRM field becomes model features."""

    name: str
    kind: str  # numeric | categorical | date
    group: str  # fit | engagement
    categories: list[str] = field(default_factory=list)
    display: dict[str, str] = field(default_factory=dict)
    low: float | None = None
    high: float | None = None
    median: float | None = None
    # categorical: each value's share of the fit rows (None: the field has no share feature)
    shares: dict[str, float] | None = None


@dataclass
class FeatureEncoder:
    """Turns leads (DataFrame rows or dicts) into a float matrix for the booster."""

    fields: list[FieldInfo]
    placeholders: list[str]
    aliases: dict[str, dict[str, str]]
    time_col: str | None = None
    # Date columns whose slash dates the training data showed day first (25/03/2024): read so on
    # every path afterwards (the service, batch scores), whatever one lead's value looks like.
    day_first: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ph = frozenset(p.strip().casefold() for p in self.placeholders)
        self._codes = {f.name: {c: i for i, c in enumerate(f.categories)} for f in self.fields}
        self._by_name = {f.name: f for f in self.fields}
        self._day_first = frozenset(self.day_first)
        names: list[str] = []
        sources: list[str] = []
        codes: list[int] = []
        shares: list[int] = []
        for f in self.fields:
            parts = _date_parts(f.name, self.time_col) if f.kind == "date" else [f.name]
            if f.kind == "categorical":
                codes.append(len(names))
            if f.shares is not None:
                shares.append(len(names) + 1)
                parts = [f.name, f.name + SHARE_SUFFIX]
            names.extend(parts)
            sources.extend([f.name] * len(parts))
        self.feature_names = names
        self.feature_fields = sources
        self.categorical_indices = codes  # the category codes (a field's first feature)
        self.share_indices = shares  # the value shares of the categorical fields that have one

    def field(self, name: str) -> FieldInfo:
        return self._by_name[name]

    def without_shares(self) -> tuple[list[int], list[int]]:
        """The feature columns other than the value shares, and where the category codes are among
        them: the fields as a data scientist would encode them first (what the baselines learn from)."""
        shared = set(self.share_indices)
        cols = [j for j in range(len(self.feature_names)) if j not in shared]
        at = {j: i for i, j in enumerate(cols)}
        return cols, [at[j] for j in self.categorical_indices]

    def reads_day_first(self, name: str | None) -> bool:
        """Whether the date column ``name`` is read day first (dd/mm/yyyy) rather than by the rule."""
        return name in self._day_first

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    # fitting

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        columns: Sequence[str],
        *,
        kinds: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
        placeholders: Iterable[str] = (),
        aliases: Mapping[str, Mapping[str, str]] | None = None,
        ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
        time_col: str | None = None,
        max_categories: int = 40,
        min_count: int | None = None,
    ) -> FeatureEncoder:
        kinds = dict(kinds or {})
        groups = dict(groups or {})
        ranges = dict(ranges or {})
        alias_maps = {
            col: {k.strip().casefold(): v.strip().casefold() for k, v in m.items()}
            for col, m in (aliases or {}).items()
        }
        ph = frozenset(p.strip().casefold() for p in placeholders)
        floor = min_count if min_count is not None else max(5, int(0.002 * len(frame)))
        fields: list[FieldInfo] = []
        for col in columns:
            kind = kinds.get(col) or infer_kind(frame[col], ph)
            info = FieldInfo(name=col, kind=kind, group=groups.get(col, guess_group(col)))
            if kind == "categorical":
                spelled = _spellings(frame[col], ph, alias_maps.get(col))
                counts = (
                    spelled.groupby("key", sort=False)["n"].sum().sort_values(ascending=False, kind="stable")
                )
                keep = counts[counts >= floor].head(max_categories)
                info.categories = sorted(str(c) for c in keep.index)
                kept = spelled[spelled["key"].isin(set(info.categories))]
                shown = [clean_text(v) for v in kept["value"]]
                info.display = most_common_spelling(kept["key"], shown, kept["n"])
                info.shares = value_shares(counts, len(frame))
            elif kind == "numeric":
                low, high = ranges.get(col, (None, None))
                info.low, info.high = low, high
                values = map_unique(frame[col], lambda v: to_number(v, ph))
                values = _apply_range(values, low, high)
                finite = values[~np.isnan(values)]
                info.median = float(np.median(finite)) if finite.size else None
            fields.append(info)
        dated = [f.name for f in fields if f.kind == "date"] + ([time_col] if time_col else [])
        return cls(
            fields=fields,
            placeholders=sorted(ph),
            aliases={k: dict(v) for k, v in alias_maps.items()},
            time_col=time_col,
            day_first=[c for c in dict.fromkeys(dated) if c in frame.columns and slash_day_first(frame[c])],
        )

    # encoding

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode a DataFrame of leads; missing columns become missing values."""
        n = len(frame)
        out = np.full((n, len(self.feature_names)), np.nan, dtype=np.float64)
        ref = self._reference_ms_frame(frame)
        col = 0
        for f in self.fields:
            width = len(_date_parts(f.name, self.time_col)) if f.kind == "date" else 1
            # An absent column is a column of missing values: the same code as an empty field.
            series = frame[f.name] if f.name in frame.columns else pd.Series([None] * n, dtype=object)
            if f.kind == "numeric":
                out[:, col] = _apply_range(to_numbers(series, self._ph), f.low, f.high)
            elif f.kind == "categorical":
                width = 1 if f.shares is None else 2
                cells = functools.partial(self._cat_cells, f=f)
                out[:, col : col + width] = map_unique_rows(series, cells, width)
            else:
                ms = dates_ms(series, self.reads_day_first(f.name))
                out[:, col : col + width] = _date_features(ms, ref, width)
            col += width
        return out

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode many leads given as mappings: the vectorised path, same values as ``encode_record``."""
        if len(records) == 1:
            return self.encode_record(records[0])[None, :]
        n = len(records)
        out = np.full((n, len(self.feature_names)), np.nan, dtype=np.float64)
        if self.time_col:
            first = self.reads_day_first(self.time_col)
            ref = np.fromiter((parse_date(r.get(self.time_col), first) for r in records), float, n)
            ref = np.where(np.isnan(ref), _now_ms(), ref)
        else:
            ref = np.full(n, _now_ms())
        col = 0
        for f in self.fields:
            width = len(_date_parts(f.name, self.time_col)) if f.kind == "date" else 1
            values = [r.get(f.name) for r in records]
            if f.kind == "numeric":
                out[:, col] = _apply_range(self._numbers(values), f.low, f.high)
            elif f.kind == "categorical":
                width = 1 if f.shares is None else 2
                out[:, col : col + width] = _per_text(values, functools.partial(self._cat_cells, f=f), width)
            else:
                first = self.reads_day_first(f.name)
                ms = np.fromiter((parse_date(v, first) for v in values), float, n)
                out[:, col : col + width] = _date_features(ms, ref, width)
            col += width
        return out

    def _numbers(self, values: list[Any]) -> np.ndarray:
        """``to_number`` of each value; numbers and nulls (what the service's checker passes on) at
        numpy speed, anything else value by value."""
        try:
            if all(v is None or type(v) is float or type(v) is int for v in values):
                numbers = np.array(values, dtype=np.float64)  # None is NaN
                bad = ~np.isfinite(numbers) | (np.abs(numbers) > MAX_MAGNITUDE)
                numbers[bad] = np.nan
                return numbers
        except (OverflowError, ValueError, TypeError):
            pass
        return np.fromiter((to_number(v, self._ph) for v in values), float, len(values))

    def encode_record(self, record: Mapping[str, Any]) -> np.ndarray:
        """Encode one lead given as a mapping of field name to value (the service path)."""
        row = np.full(len(self.feature_names), np.nan, dtype=np.float64)
        ref = self._reference_ms_record(record)
        col = 0
        for f in self.fields:
            width = len(_date_parts(f.name, self.time_col)) if f.kind == "date" else 1
            value = record.get(f.name)
            if f.kind == "numeric":
                number = to_number(value, self._ph)  # outside the field's range: missing, as in a batch
                out_of_range = (f.low is not None and number < f.low) or (
                    f.high is not None and number > f.high
                )
                row[col] = math.nan if out_of_range else number
            elif f.kind == "categorical":
                cells = self._cat_cells(value, f)
                width = len(cells)
                row[col : col + width] = cells
            else:
                ms = np.array([parse_date(value, self.reads_day_first(f.name))])
                row[col : col + width] = _date_features(ms, np.array([ref]), width)[0]
            col += width
        return row

    def missing_masks(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Which rows of an encoded matrix each field is missing for (its first feature: NaN, or the
        missing category's code)."""
        masks: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.feature_fields):
            if name not in masks:
                f = self.field(name)
                masks[name] = (
                    X[:, j] == len(f.categories) + 1 if f.kind == "categorical" else np.isnan(X[:, j])
                )
        return masks

    def is_other(self, name: str, value: Any) -> bool:
        """Whether ``value`` of the categorical field ``name`` is scored as "other": a value the
        model did not learn (rare or unseen in training; a placeholder is a missing value, not other)."""
        codes = self._codes.get(name)
        if codes is None:
            return False
        canon = canonical_category(value, self._ph, self.aliases.get(name))
        return canon is not None and canon not in codes

    def _cat_cells(self, value: Any, f: FieldInfo) -> tuple[float, ...]:
        """A categorical field's features of ``value``, its canonical form found once: the category's
        code, and its share of the fit rows when the field has one (every encoding path reads these)."""
        canon = canonical_category(value, self._ph, self.aliases.get(f.name))
        code = _code(canon, self._codes[f.name])
        return (code,) if f.shares is None else (code, _share_of(canon, f.shares))

    def _reference_ms_frame(self, frame: pd.DataFrame) -> np.ndarray:
        if self.time_col and self.time_col in frame.columns:
            ref = dates_ms(frame[self.time_col], self.reads_day_first(self.time_col))
        else:
            ref = np.full(len(frame), math.nan)
        return np.where(np.isnan(ref), _now_ms(), ref)

    def _reference_ms_record(self, record: Mapping[str, Any]) -> float:
        ref = (
            parse_date(record.get(self.time_col), self.reads_day_first(self.time_col))
            if self.time_col
            else math.nan
        )
        return _now_ms() if math.isnan(ref) else ref

    def describe_value(self, field_name: str, value: Any) -> str | None:
        """The value as a person would read it (the most common original spelling)."""
        f = self.field(field_name)
        if f.kind == "categorical":
            canon = canonical_category(value, self._ph, self.aliases.get(f.name))
            if canon is None:
                return None
            return f.display.get(canon, clean_text(value))
        if f.kind == "numeric":
            number = to_number(value, self._ph)
            if math.isnan(number):
                return None
            return f"{number:g}"
        ms = parse_date(value, self.reads_day_first(field_name))
        return None if math.isnan(ms) else str(np.datetime64(int(ms), "ms").astype("datetime64[D]"))

    # persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": [asdict(f) for f in self.fields],
            "placeholders": self.placeholders,
            "aliases": self.aliases,
            "time_col": self.time_col,
            "day_first": self.day_first,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureEncoder:
        return cls(
            fields=[FieldInfo(**f) for f in data["fields"]],
            placeholders=list(data["placeholders"]),
            aliases={k: dict(v) for k, v in data["aliases"].items()},
            time_col=data.get("time_col"),
            day_first=list(data.get("day_first", [])),
        )


def _code(canon: str | None, codes: Mapping[str, int]) -> float:
    """A category's code: known categories 0..k-1, then "other" (rare or unseen) k, then "missing"
    k+1. A placeholder is never learned as a value, but that the field was left empty can be."""
    if canon is None:
        return float(len(codes) + 1)
    return float(codes.get(canon, len(codes)))


def _share_of(canon: str | None, shares: Mapping[str, float]) -> float:
    """A category's share of the fit rows: 0 for one unseen or rare there, NaN when missing."""
    if canon is None:
        return math.nan
    return shares.get(canon, 0.0)


def _per_text(values: list[Any], func: Any, width: int) -> np.ndarray:
    """``func`` of each value (``width`` floats) as an (n, width) array, called once per distinct text
    (CRMs repeat a few values)."""
    seen: dict[str, tuple[float, ...]] = {}
    out = np.empty((len(values), width))
    for i, v in enumerate(values):
        if type(v) is str:
            got = seen.get(v)
            if got is None:
                got = seen[v] = func(v)
            out[i] = got
        else:
            out[i] = func(v)
    return out


def value_shares(counts: pd.Series, rows: int) -> dict[str, float] | None:
    """Each common value's share of the ``rows`` fit rows, from its count (most common first), or
    None when too few values are common enough for a share to say more than the category does."""
    common = counts[counts >= SHARE_MIN_COUNT].head(SHARE_MAX_VALUES)
    if len(common) < SHARE_MIN_VALUES or rows <= 0:
        return None
    return {str(k): float(n) / rows for k, n in common.items()}


def _now_ms() -> float:
    return float(int(datetime.now(UTC).timestamp() * 1000))


def _date_parts(name: str, time_col: str | None) -> list[str]:
    parts = [f"{name}__month", f"{name}__weekday", f"{name}__hour", f"{name}__age_days"]
    return parts


def _date_features(ms: np.ndarray, ref: np.ndarray, width: int) -> np.ndarray:
    out = np.full((len(ms), width), np.nan)
    ok = ~np.isnan(ms)
    if not ok.any():
        return out
    stamps = pd.to_datetime(ms[ok].astype(np.int64), unit="ms")
    out[ok, 0] = stamps.month.to_numpy()
    out[ok, 1] = stamps.day_of_week.to_numpy()
    out[ok, 2] = stamps.hour.to_numpy()
    out[ok, 3] = np.round((ref[ok] - ms[ok]) / _MS_PER_DAY, 3)
    return out


def _apply_range(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    if low is None and high is None:
        return values
    out = values.copy()
    if low is not None:
        out[out < low] = np.nan
    if high is not None:
        out[out > high] = np.nan
    return out


def _spellings(raw: pd.Series, ph: frozenset[str], alias: Mapping[str, str] | None) -> pd.DataFrame:
    """Each distinct value of a column once, in order of first appearance: the value, its category
    key and how many rows hold it (missing values and placeholders left out). A column's categories
    and display names are counted from these, not from every row."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    values = np.asarray(uniques, dtype=object)
    keys = pd.Series([canonical_category(v, ph, alias) for v in values], dtype=object)
    n = np.bincount(codes[codes >= 0], minlength=len(values))
    spelled = pd.DataFrame({"value": values, "key": keys, "n": n})
    return spelled[spelled["key"].notna()]


def infer_kind(series: pd.Series, placeholders: frozenset[str] = frozenset()) -> str:
    """numeric, date or categorical, from a column's values."""
    if pd.api.types.is_bool_dtype(series):
        return "numeric"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    sample = series.dropna()
    sample = sample[~sample.astype(str).str.strip().str.casefold().isin(placeholders)]
    if sample.empty:
        return "categorical"
    sample = sample.sample(min(len(sample), 2000), random_state=0) if len(sample) > 2000 else sample
    numbers = np.array([to_number(v) for v in sample])
    if np.mean(~np.isnan(numbers)) >= 0.95:
        return "numeric"
    dates = np.array([parse_date(v) for v in sample])
    if np.mean(~np.isnan(dates)) >= 0.8:
        return "date"
    return "categorical"
