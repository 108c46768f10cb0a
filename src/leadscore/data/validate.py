"""Validation of a CRM export against its dataset spec: what is wrong, where, and how often."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.lifecycle import DateLabels
from leadscore.data.moments import first_moments
from leadscore.data.personal import email_column
from leadscore.errors import UserError
from leadscore.features import (
    canonical_category,
    clean_text,
    dates_ms,
    infer_kind,
    map_values,
)
from leadscore.features.values import canonical_texts, date_order_notes, to_numbers
from leadscore.spec import DatasetSpec, norm_label

MIN_CLASS_EXAMPLES = 40


@dataclass
class Problem:
    """One finding: ``error`` makes the data unusable, ``warning`` is listed but allowed."""

    level: str
    check: str
    column: str | None
    count: int
    message: str
    table: str | None = None  # a data folder's table (events, stages); None: the leads

    def line(self) -> str:
        where = f"column '{self.column}'" if self.column else "file"
        if self.table:
            where = f"table '{self.table}'" + (f", {where}" if self.column else "")
        return f"{self.level}: {where}: {self.message}"


@dataclass
class ValidationReport:
    """The outcome of validating one file."""

    source: str
    rows: int
    columns: int
    positives: int = 0
    negatives: int = 0
    problems: list[Problem] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # a data folder: facts per table
    read_as: str | None = None  # a CSV's separator and number marks, as every reader takes them
    matching: dict[str, int] | None = None  # a spec with accounts: leads matched by each method

    @property
    def usable(self) -> bool:
        return not any(p.level == "error" for p in self.problems)

    @property
    def exit_code(self) -> int:
        return 0 if self.usable else 2

    def add(
        self, level: str, check: str, column: str | None, count: int, message: str, table: str | None = None
    ) -> None:
        self.problems.append(Problem(level, check, column, int(count), message, table))

    def count(self, check: str, column: str | None = None) -> int:
        return sum(
            p.count for p in self.problems if p.check == check and (column is None or p.column == column)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "usable": self.usable,
            "rows": self.rows,
            "columns": self.columns,
            "positives": self.positives,
            "negatives": self.negatives,
            "errors": sum(p.level == "error" for p in self.problems),
            "warnings": sum(p.level == "warning" for p in self.problems),
            "problems": [asdict(p) for p in self.problems],
            "tables": self.tables,
            "read_as": self.read_as,
            **({"matching": self.matching} if self.matching is not None else {}),
        }

    def lines(self) -> list[str]:
        return [p.line() for p in self.problems]


def label_values(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """The label as 0/1 and a mask of rows whose label is known and allowed (from a flat export's
    lifecycle dates with ``label.date_columns``; sales' decisions written into the label column win)."""
    if spec.label.date_columns:
        return _dated_label_values(frame, spec)
    norm = _normalised(frame[spec.label.column])
    positives = {norm_label(v) for v in spec.label.positive}
    negatives = {norm_label(v) for v in spec.label.negative} if spec.label.negative else None
    known = norm.notna().to_numpy().copy()
    if negatives is not None:
        known = known & norm.isin(positives | negatives).to_numpy()
    y = norm.isin(positives).to_numpy().astype(np.int8)
    return y, known


def _normalised(labels: pd.Series) -> pd.Series:
    """A label column's values as compared with the spec's positives and negatives (None: empty)."""
    return map_values(labels, lambda v: None if clean_text(v) is None else norm_label(v))


def _dated_label_values(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    dated = DateLabels(frame, spec)
    y, known = dated.y.copy(), dated.known.copy()
    if spec.label.column in frame.columns:  # a label set on purpose (sales' decisions) wins
        norm = _normalised(frame[spec.label.column])
        has = norm.notna().to_numpy()
        positives = {norm_label(v) for v in spec.label.positive}
        y[has] = norm[has].isin(positives).to_numpy().astype(np.int8)
        known |= has
    return y, known


def validate_frame(frame: pd.DataFrame, spec: DatasetSpec, source: str = "data") -> ValidationReport:
    """Check a lead table against a spec; never raises for problems in the data itself."""
    report = ValidationReport(source=source, rows=len(frame), columns=frame.shape[1])
    ph = frozenset(p.strip().casefold() for p in spec.placeholders)
    if frame.empty:
        report.add("error", "empty", None, 0, "no rows")
        return report
    _check_label(frame, spec, report)
    _check_missing_columns(frame, spec, report)
    _check_duplicates(frame, spec, report)
    _check_placeholders(frame, spec, ph, report)
    _check_dates(frame, spec, report)
    _check_numbers(frame, spec, ph, report)
    _check_spellings(frame, spec, ph, report)
    return report


def _check_spellings(
    frame: pd.DataFrame, spec: DatasetSpec, ph: frozenset[str], report: ValidationReport
) -> None:
    """Categories written several ways ('USA', 'United States', 'google', 'Google')."""
    for col in frame.columns:
        if col in {spec.label.column, spec.id, spec.email} or col in spec.exclude:
            continue
        series = frame[col]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        counts = series.dropna().astype(str).value_counts()
        if len(counts) > 5000:
            continue
        alias = {k.strip().casefold(): v.strip().casefold() for k, v in spec.aliases.get(col, {}).items()}
        canon = pd.Series([canonical_category(v, ph, alias) for v in counts.index], index=counts.index)
        frame_counts = pd.DataFrame({"canon": canon, "n": counts}).dropna()
        variants = frame_counts.groupby("canon")["n"].agg(["count", "sum", "max"])
        variants = variants[variants["count"] > 1]
        if not variants.empty:
            rows = int((variants["sum"] - variants["max"]).sum())
            report.add(
                "warning",
                "mixed_spelling",
                col,
                rows,
                f"{rows} values spelled differently from the usual form of the same category (merged)",
            )


def _check_label(frame: pd.DataFrame, spec: DatasetSpec, report: ValidationReport) -> None:
    col = spec.label.column
    if spec.label.date_columns:
        _check_dated_label(frame, spec, report)
        return
    if col not in frame.columns:
        report.add("error", "missing_label", col, 0, "label column is missing")
        return
    raw = frame[col]
    present_label = map_values(raw, lambda v: clean_text(v) is not None).to_numpy(dtype=bool)
    missing = int((~present_label).sum())
    if missing:
        report.add(
            "warning", "missing_label", col, missing, f"{missing} rows without a label (left out of training)"
        )
    y, known = label_values(frame, spec)
    if spec.label.negative is not None:
        unknown_mask = ~known & present_label
        unknown = int(unknown_mask.sum())
        if unknown:
            examples = ", ".join(sorted({str(v) for v in raw[unknown_mask].head(50)})[:3])
            report.add(
                "error",
                "unknown_label",
                col,
                unknown,
                f"{unknown} rows with unknown label values ({examples})",
            )
    else:
        # Without a list of negatives every non-positive value is negative; say so if none matched.
        allowed = {norm_label(v) for v in spec.label.positive}
        seen = {norm_label(v) for v in raw.dropna().unique()}
        if seen and not seen & allowed:
            shown = ", ".join(str(v) for v in spec.label.positive)
            report.add(
                "error",
                "unknown_label",
                col,
                len(raw),
                f"no row has the positive value ({shown}); values seen: {', '.join(sorted(seen)[:5])}",
            )
    _count_classes(report, y, known, col)


def _count_classes(report: ValidationReport, y: np.ndarray, known: np.ndarray, col: str | None) -> None:
    """The known labels' SQL and non-SQL counts, and an error for a class too small to learn from."""
    report.positives = int(y[known].sum())
    report.negatives = int(known.sum() - report.positives)
    for name, count in (("SQL", report.positives), ("non-SQL", report.negatives)):
        if count < MIN_CLASS_EXAMPLES:
            report.add(
                "error",
                "too_few_examples",
                col,
                count,
                f"only {count} {name} examples; at least {MIN_CLASS_EXAMPLES} are needed to learn from",
            )


def _check_dated_label(frame: pd.DataFrame, spec: DatasetSpec, report: ValidationReport) -> None:
    """A label from lifecycle dates: every named column there, and who was already past them."""
    try:
        dated = DateLabels(frame, spec)
    except UserError as exc:
        report.add("error", "missing_label", None, 0, str(exc))
        return
    y, known = label_values(frame, spec)  # a label column set on purpose (sales' decisions) wins
    _count_classes(report, y, known, None)
    past = int(dated.past.sum())
    if past:
        report.add(
            "warning",
            "already_past",
            None,
            past,
            f"{past:,} leads had a date of {', '.join(spec.label.date_columns or [])} before they were "
            "scored: left out of training",
        )


def _check_missing_columns(frame: pd.DataFrame, spec: DatasetSpec, report: ValidationReport) -> None:
    if spec.id and spec.id not in frame.columns:
        report.add("error", "missing_column", spec.id, 0, "id column is missing")
    if spec.time and spec.time not in frame.columns:
        report.add("error", "missing_column", spec.time, 0, "time column is missing")
    for col in spec.features:
        if col not in frame.columns:
            report.add(
                "warning",
                "missing_column",
                col,
                0,
                "column in the spec is missing (treated as missing values)",
            )


def _check_duplicates(frame: pd.DataFrame, spec: DatasetSpec, report: ValidationReport) -> None:
    if spec.id and spec.id in frame.columns:
        ids = frame[spec.id]
        if not (pd.api.types.is_integer_dtype(ids) and not ids.hasnans):  # whole numbers: as they are
            ids = map_values(ids, clean_text)
        dup = int(ids.dropna().duplicated().sum())
        if dup:
            report.add("warning", "duplicate_id", spec.id, dup, f"{dup} rows repeat an id already seen")
    contact = email_column(frame, spec.email)
    if contact is not None:  # the spec's email column, or one found by its values
        # a lead's later scoring moments share its email: repeats are counted among its first ones
        emails = canonical_texts(frame.loc[first_moments(frame), contact]).dropna()
        dup = int(emails.duplicated().sum())
        if dup:
            report.add(
                "warning",
                "duplicate_contact",
                contact,
                dup,
                f"{dup} rows repeat a contact (same email once case and spaces are ignored)",
            )


def _check_placeholders(
    frame: pd.DataFrame, spec: DatasetSpec, ph: frozenset[str], report: ValidationReport
) -> None:
    skip = {spec.label.column, spec.id}
    for col in frame.columns:
        if (
            col in skip
            or pd.api.types.is_numeric_dtype(frame[col])
            or pd.api.types.is_datetime64_any_dtype(frame[col])
        ):
            continue
        codes, uniques = pd.factorize(frame[col], use_na_sentinel=True)  # each distinct value once
        folded = (
            pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str).str.strip().str.casefold()
        )
        placeholder = ((folded != "") & folded.isin(ph)).to_numpy()
        hits = int(np.bincount(codes[codes >= 0], minlength=len(uniques))[placeholder].sum())
        if hits:
            report.add(
                "warning",
                "placeholder",
                col,
                hits,
                f"{hits} placeholder values such as 'Select' or 'N/A' (treated as missing)",
            )


def _check_dates(frame: pd.DataFrame, spec: DatasetSpec, report: ValidationReport) -> None:
    for col in dict.fromkeys([c for c in [spec.time, *spec.dates] if c]):
        if col not in frame.columns or pd.api.types.is_datetime64_any_dtype(frame[col]):
            continue
        present = map_values(frame[col], lambda v: clean_text(v) is not None)
        parsed = dates_ms(frame[col])  # the column's own slash dates decide their order, as everywhere
        bad = int((present.to_numpy(dtype=bool) & np.isnan(parsed)).sum())
        if bad:
            level = "error" if col == spec.time and bad == int(present.sum()) else "warning"
            report.add(level, "unparseable_date", col, bad, f"{bad} values are not dates in a known format")
        for line in date_order_notes(frame, [col]):
            report.add("warning", "date_order", col, 0, line.split(": ", 1)[1])


def _check_numbers(
    frame: pd.DataFrame, spec: DatasetSpec, ph: frozenset[str], report: ValidationReport
) -> None:
    for col in frame.columns:
        if col in {spec.label.column, spec.id}:
            continue
        low, high = spec.ranges.get(col, (None, None))
        declared = col in spec.ranges
        if not declared and (col in spec.categorical or infer_kind(frame[col], ph) != "numeric"):
            continue
        values = to_numbers(frame[col], ph)
        if declared:
            with np.errstate(invalid="ignore"):
                out = np.zeros(len(values), dtype=bool)
                if low is not None:
                    out |= values < low
                if high is not None:
                    out |= values > high
            bad = int(out.sum())
            if bad:
                report.add(
                    "warning",
                    "out_of_range",
                    col,
                    bad,
                    f"{bad} impossible values outside [{low}, {high}] (treated as missing)",
                )
        if not pd.api.types.is_numeric_dtype(frame[col]):
            present = map_values(
                frame[col], lambda v: clean_text(v) is not None and str(v).strip().casefold() not in ph
            )
            junk = int((present.to_numpy(dtype=bool) & np.isnan(values)).sum())
            if junk:
                report.add(
                    "warning",
                    "not_a_number",
                    col,
                    junk,
                    f"{junk} values are not numbers (treated as missing)",
                )
