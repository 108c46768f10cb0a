"""Scalar value functions: how one CRM value becomes a number, a category or a time.

Batch and single-lead encoding, validation, the points model and the reports all call these, so a
value means the same thing everywhere. The frame helpers call a scalar function once per distinct value.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MS_PER_DAY = 86_400_000
MAX_MAGNITUDE = 1e15  # no CRM field holds a number this large: a unit or export error, read as missing
MAX_ID_LENGTH = 200  # characters of a lead id (the store's column): longer ids are refused at the door


def to_epoch_ms(values: Any) -> np.ndarray:
    """Timestamps (datetime64, pandas, strings) as int64 milliseconds since the epoch (UTC)."""
    series = pd.Series(values)
    if not pd.api.types.is_datetime64_any_dtype(series):
        series = pd.Series(parse_dates(series))
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    as_ms = series.to_numpy(dtype="datetime64[ms]")
    return as_ms.astype(np.int64)


_DMY = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_MDY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def flag_of(value: Any) -> bool | None:
    """A flag as an answer holds it or a file gives it back ("True", "false", 1, True); None when missing."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip().casefold() in {"true", "1", "yes"}
    return bool(value)


def lead_key(value: Any) -> str:
    """A lead id as every path keys it (the API, batch scores, sales' decisions, the store, training's
    join of decisions): text as sent with its ends trimmed, a whole number without its ".0" (a CSV
    column with gaps is read as floats); '' for none. Nothing else is changed: 'lead-9.0' stays."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value).strip()


def id_problem(key: str) -> str | None:
    """Why a lead key cannot be kept (too long for the store), or None."""
    if len(key) > MAX_ID_LENGTH:
        return f"a lead id of {len(key):,} characters (at most {MAX_ID_LENGTH})"
    return None


def clean_text(value: Any) -> str | None:
    """A value as text with whitespace collapsed; None when missing."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def parse_date(value: Any, day_first: bool = False) -> float:
    """A date or timestamp as epoch milliseconds; NaN if not one. The rule, the same on every path:
    ISO 8601 as written; dd-mm-yyyy (dashes) day first; slashes month first (mm/dd/yyyy) unless
    ``day_first``, which a column whose slash dates say so gets (``slash_day_first``)."""
    if is_missing(value):
        return math.nan
    if isinstance(value, (pd.Timestamp, datetime)):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return float(stamp.value // 1_000_000)
    if isinstance(value, np.datetime64):
        return float(value.astype("datetime64[ms]").astype(np.int64))
    if not isinstance(value, str):
        return math.nan
    if len(value) > 64:  # no junk kept in the cache
        return _text_date.__wrapped__(value, day_first)
    return _text_date(value, day_first)


@functools.lru_cache(maxsize=8192)
def _text_date(value: str, day_first: bool = False) -> float:
    """``parse_date`` of text, remembered: a lead's dates are read when it is checked and again when
    it is encoded (and a scoring time is also the reference of every date field)."""
    text = value.strip()
    parsed: datetime | None = None
    for pattern, order in ((_DMY, "dmy"), (_MDY, "dmy" if day_first else "mdy")):
        match = pattern.match(text)
        if match:
            a, b, year = int(match[1]), int(match[2]), int(match[3])
            day, month = (a, b) if order == "dmy" else (b, a)
            hh, mm, ss = (int(match[i]) if match[i] else 0 for i in (4, 5, 6))
            try:
                parsed = datetime(year, month, day, hh, mm, ss)
            except ValueError:
                return math.nan
            break
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return math.nan
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 east of UTC (or 9999 west of it): no such time in UTC
            return math.nan
    return float(int((parsed - datetime(1970, 1, 1)).total_seconds() * 1000))


def slash_orders(values: Any) -> tuple[bool, bool]:
    """What a column's slash dates (a/b/yyyy) say: some can only be day first (a > 12), some only
    month first (b > 12)."""
    series = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return False, False
    day_only = month_only = False
    for value in series.dropna().unique()[:100_000]:
        match = _MDY.match(value.strip()) if isinstance(value, str) else None
        if match:
            a, b = int(match[1]), int(match[2])
            day_only |= a > 12
            month_only |= b > 12
    return day_only, month_only


def slash_day_first(values: Any) -> bool:
    """Whether a column's slash dates are day first: some say so (25/03/2024) and none says otherwise."""
    day_only, month_only = slash_orders(values)
    return day_only and not month_only


def moment_ms(text: str) -> float:
    """A moment as written (a day: its start, 00:00 UTC; a time with a zone: that instant in UTC) as
    epoch ms; ``ValueError`` when the text is not one (``--as-of``, an API body's ``as_of``)."""
    stamp = pd.Timestamp(text.strip())
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return float(stamp.value // 1_000_000)


def dates_ms(series: pd.Series, day_first: bool | None = None) -> np.ndarray:
    """``parse_date`` over a column as float epoch ms (NaN where not a date); datetime columns
    vectorised. ``day_first`` None: the column's own slash dates decide (``slash_day_first``)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy(dtype="datetime64[ms]")
        out = stamps.astype(np.int64).astype(np.float64)
        out[np.isnat(stamps)] = math.nan
        return out
    first = slash_day_first(series) if day_first is None else day_first
    return map_unique(series, functools.partial(parse_date, day_first=first))


def parse_dates(values: Any, day_first: bool | None = None) -> np.ndarray:
    """Vectorised ``parse_date``: datetime64[ms] with NaT where a value is not a date."""
    series = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.to_numpy(dtype="datetime64[ms]")
    ms = dates_ms(series, day_first)
    out = np.full(len(ms), np.datetime64("NaT"), dtype="datetime64[ms]")
    ok = ~np.isnan(ms)
    out[ok] = ms[ok].astype(np.int64).astype("datetime64[ms]")
    return out


def date_warnings(frame: pd.DataFrame, columns: Any) -> list[str]:
    """What every command says of a file's date columns: values that are not dates, and how the
    column's slash dates were read (day first when they say so, month first when nothing says)."""
    counts = unreadable_dates(frame, columns)
    said = [unreadable_line(c, n) for c, n in counts.items() if n]
    return said + date_order_notes(frame, columns)


def unreadable_line(column: str, count: int) -> str:
    return f"column '{column}': {count:,} values are not dates (read as missing)"


def unreadable_dates(
    frame: pd.DataFrame, columns: Any, day_first: Callable[[str], bool] | None = None
) -> dict[str, int]:
    """Per date column: the values given that are not dates (read as missing). ``day_first``: how a
    model reads each column (its encoder's order); by default each column's own slash dates decide."""
    counts = {}
    for column in dict.fromkeys(c for c in columns if c and c in frame.columns):
        series = frame[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            continue
        given = (series.astype("string").str.strip() != "").fillna(False).to_numpy(dtype=bool)
        order = None if day_first is None else day_first(column)
        counts[column] = int((np.isnan(dates_ms(series, order)) & given).sum())
    return counts


def date_order_notes(frame: pd.DataFrame, columns: Any) -> list[str]:
    """How each date column's slash dates are read, when the column does not make it plain."""
    said = []
    for column in dict.fromkeys(c for c in columns if c and c in frame.columns):
        day_only, month_only = slash_orders(frame[column])
        if day_only and month_only:
            said.append(f"column '{column}': slash dates are written both day first and month first: "
                        "read month first (mm/dd/yyyy); dates like 05/03/2024 may be wrong")  # fmt: skip
        elif day_only:
            said.append(f"column '{column}': slash dates read day first (dd/mm/yyyy), as values like "
                        "25/03/2024 say")  # fmt: skip
        elif not month_only and _has_slash_dates(frame[column]):
            said.append(f"column '{column}': slash dates read month first (mm/dd/yyyy): nothing in the "
                        "column says otherwise (05/03/2024 is 3 May)")  # fmt: skip
    return said


def _has_slash_dates(series: pd.Series) -> bool:
    return any(isinstance(v, str) and _MDY.match(v.strip()) for v in series.dropna().unique()[:1000])


def to_number(value: Any, placeholders: frozenset[str] = frozenset()) -> float:
    """A number from a CRM value ("1,200", " 7 ", True); NaN for placeholders and junk."""
    if is_missing(value):
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float (10**400)
            return math.nan
        return number if math.isfinite(number) and abs(number) <= MAX_MAGNITUDE else math.nan
    text = str(value).strip()
    if text.casefold() in placeholders:
        return math.nan
    try:
        number = float(text.replace(",", "").replace("_", ""))
    except ValueError:
        return math.nan
    return number if math.isfinite(number) and abs(number) <= MAX_MAGNITUDE else math.nan


def canonical_category(
    value: Any, placeholders: frozenset[str] = frozenset(), aliases: Mapping[str, str] | None = None
) -> str | None:
    """The canonical spelling of a category: case, spaces and known aliases folded; None if missing."""
    text = clean_text(value)
    if text is None:
        return None
    key = text.casefold()
    if key in placeholders:
        return None
    if aliases:
        key = aliases.get(key, key)
    return key


def map_unique_rows(series: pd.Series, func: Any, width: int) -> np.ndarray:
    """``map_unique`` of a function giving ``width`` floats per value: an (n, width) array, the column
    factorized once for all of them."""
    return _per_distinct(series, func, np.float64, width)


def _per_distinct(series: pd.Series, func: Any, dtype: Any, width: int | None = None) -> np.ndarray:
    """``func`` called once per distinct value and broadcast; missing values get ``func(None)``."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.empty((len(uniques) + 1,) if width is None else (len(uniques) + 1, width), dtype=dtype)
    if len(uniques):  # (an empty list does not fill a (0, width) block)
        mapped[:-1] = [func(v) for v in uniques]
    mapped[-1] = func(None)  # factorize's missing sentinel is -1: the last slot
    return mapped[codes]


def to_numbers(series: pd.Series, placeholders: frozenset[str] = frozenset()) -> np.ndarray:
    """``to_number`` of a whole column: a numeric one at once, any other once per distinct value."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        x = series.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(x) & (np.abs(x) <= MAX_MAGNITUDE), x, np.nan)
    return map_unique(series, lambda v: to_number(v, placeholders))


# What ``str.split()`` splits ASCII text on (``\x1c``-``\x1f`` included, unlike a regex's ``\s``)
_ASCII_SPACES = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"


def canonical_texts(series: pd.Series) -> pd.Series:
    """``canonical_category`` of a whole column (no placeholders or aliases), as objects: ASCII text
    of an Arrow column by Arrow's kernels (spaces collapsed, lower case, which is ASCII's case fold),
    other values once per distinct value. A million distinct emails: one pass, not a million calls."""
    if not isinstance(series.dtype, pd.StringDtype) or series.dtype.storage != "pyarrow":
        return map_values(series, canonical_category)
    text = pa.array(series.array)
    folded = pc.utf8_lower(pc.utf8_trim(pc.replace_substring_regex(text, _ASCII_SPACES, " "), " "))
    out = folded.to_numpy(zero_copy_only=False).astype(object)
    out[pc.is_null(text).to_numpy(zero_copy_only=False)] = None
    other = ~pc.fill_null(pc.string_is_ascii(text), True).to_numpy(zero_copy_only=False)
    if other.any():  # Unicode's spaces and case folds (``ß`` -> ``ss``): Python's own rules
        out[other] = map_values(series[other], canonical_category).to_numpy(dtype=object)
    return pd.Series(out, index=series.index, dtype=object)


def map_unique(series: pd.Series, func: Any) -> np.ndarray:
    """Apply a scalar function once per distinct value and broadcast it (float result)."""
    return _per_distinct(series, func, np.float64)


def lead_keys(series: pd.Series) -> pd.Series:
    """``lead_key`` of every value (``map_values(series, lead_key)``); whole-number columns, the
    usual CRM id, converted in one pass (a million ids in milliseconds, not a call per distinct id)."""
    if pd.api.types.is_integer_dtype(series.dtype) and not series.hasnans:
        text = np.asarray(series, dtype=np.int64).astype(str).astype(object)
        return pd.Series(text, index=series.index, dtype=object)
    return map_values(series, lead_key)


def map_values(series: pd.Series, func: Any) -> pd.Series:
    """``series.map(func)``, calling ``func`` once per distinct value (missing values get ``func(None)``)."""
    return pd.Series(_per_distinct(series, func, object), index=series.index, dtype=object)


def most_common_spelling(keys: Any, shown: Any, counts: Any = None) -> dict[str, str]:
    """For each canonical key, its most common spelling as written in the data (ties: the first in
    sort order); rows missing either are left out. ``counts``: how many rows each (key, spelling)
    row stands for (one each when None). The encoder's category names and a segment's name are both
    read this way."""
    pairs = pd.DataFrame({"key": keys, "shown": shown, "n": 1 if counts is None else counts}).dropna()
    if pairs.empty:
        return {}
    counts = pairs.groupby(["key", "shown"])["n"].sum().reset_index(name="n")
    counts = counts.sort_values(["key", "n", "shown"], ascending=[True, False, True])
    return {str(r.key): str(r.shown) for r in counts.drop_duplicates("key").itertuples()}
