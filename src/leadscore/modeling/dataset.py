"""The training data: read once (and hashed while read), labelled, checked, deduplicated and split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from leadscore.data.account_table import ACCOUNT_ID
from leadscore.data.folders import (
    Loaded,
    is_declared_folder,
    labelled_history,
    sql_times,
    with_declared_tables,
)
from leadscore.data.labels import apply_labels, decided_leads, reached_times
from leadscore.data.lifecycle import DateLabels, with_scoring_time
from leadscore.data.maturity import ExportDay, export_day, label_windows, parse_observed_until
from leadscore.data.moments import MOMENT_NO, MOMENT_OF, first_moments
from leadscore.data.paths import leads_path
from leadscore.data.personal import email_column, personal_reason, unusable_reason
from leadscore.data.sources import format_warnings, read_table_hashed
from leadscore.data.validate import MIN_CLASS_EXAMPLES, ValidationReport, label_values, validate_frame
from leadscore.errors import UserError
from leadscore.features import dates_ms, parse_dates
from leadscore.features.values import canonical_texts, date_warnings, lead_keys
from leadscore.modeling.survival import Observed, observed
from leadscore.spec import DatasetSpec

TEST_SHARE = 0.2
VALID_SHARE = 0.2


@dataclass
class Survival:
    """For the time-to-SQL head: every lead with a known label, its window open or not, and the days
    to its first SQL or the days it was seen without one."""

    frame: pd.DataFrame
    obs: Observed


@dataclass
class TrainingData:
    """Labelled, deduplicated leads ready to encode, with what was found on the way."""

    frame: pd.DataFrame
    y: np.ndarray
    report: ValidationReport
    data_hash: str
    dropped: int
    notes: list[str] = field(default_factory=list)
    windows: dict[str, Any] = field(default_factory=dict)  # LabelWindows.to_dict(): what was left out
    survival: Survival | None = None  # every labelled lead, open ones too, with what was seen of it
    weight: np.ndarray | None = None  # per row, the export's leads it stands for (--sample); None: 1
    # per row, whether it was drawn uniformly before reading (--sample on a big export; None: every
    # row): validation and test leads come from these rows only
    uniform: np.ndarray | None = None

    def weight_of(self, rows: np.ndarray) -> np.ndarray | None:
        """The weights of ``rows`` (an index or a mask), or None when every row counts once."""
        return None if self.weight is None else self.weight[rows]

    @property
    def n_pos(self) -> int:
        return int(self.y.sum())

    @property
    def n_neg(self) -> int:
        return int(len(self.y) - self.y.sum())


@dataclass
class Split:
    """Row indices: fit (the booster learns), valid (early stopping, calibration), test (every metric)."""

    fit: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    kind: str  # "time" or "stratified"

    @property
    def train(self) -> np.ndarray:
        return np.sort(np.concatenate([self.fit, self.valid]))


class LoadedExport(NamedTuple):
    """An export as training reads it: the leads, their SHA-256, the export's day and, from a status
    history, each lead's first SQL time (epoch ms by lead id; None for a flat export)."""

    frame: pd.DataFrame
    digest: str
    day: ExportDay | None
    sql_at: pd.Series | None


def load_training_frame(
    path: str | Path, spec: DatasetSpec, notes: list[str] | None = None, tables: Loaded | None = None
) -> LoadedExport:
    """The leads table, its SHA-256 and the day the export was taken; a data folder's tables get the
    spec's declared features (the activity log rolled up as of each lead's scoring time) and its
    labels from stages (only what the status history says up to the export day). ``tables``: the
    folder's declared tables as already read (a backtest reads them once for all its months)."""
    folder = Path(path)
    declared = is_declared_folder(folder, spec)
    if notes is not None:  # a CSV whose numbers read either way is named in the run's notes
        notes.extend(format_warnings(leads_path(folder, spec) if declared else path))
    if declared:  # a CRM's own tables, declared in the spec
        frame, digest = read_table_hashed(leads_path(folder, spec))
        frame = with_scoring_time(frame, spec)
        given = parse_observed_until(spec.observed_until, "spec key 'observed_until'")
        loaded: Loaded = tables if tables is not None else {}
        frame, past = with_declared_tables(frame, folder, spec, loaded, until_ms=given)
        if notes is not None and past:
            stages = " / ".join(spec.label.stages or [])
            notes.append(f"left out {past} leads already at {stages} when they were scored")
        history = labelled_history(loaded, spec)
        sql_at = sql_times(frame, history, spec, given) if history is not None else None
        return LoadedExport(frame, digest, export_day(frame, spec, loaded), sql_at)
    frame, digest = read_table_hashed(path)
    frame = with_scoring_time(frame, spec)
    if spec.label.date_columns and notes is not None:
        past = int(DateLabels(frame, spec).past.sum())
        if past:
            notes.append(
                f"left out {past} leads already past {' / '.join(spec.label.date_columns)} when they were scored"
            )
    day = export_day(frame, spec)
    return LoadedExport(frame, digest, day, reached_times(frame, spec, day.ms if day else None))


def read_training_data(
    path: str | Path,
    spec: DatasetSpec,
    feedback: pd.DataFrame | None,
    feedback_source: str = "feedback",
    tables: Loaded | None = None,
) -> TrainingData:
    """Read, apply sales' decisions as labels, validate, deduplicate and keep the labelled leads."""
    notes: list[str] = []
    raw, digest, day, sql_at = load_training_frame(path, spec, notes, tables)
    if feedback is not None:
        raw, changed = apply_labels(raw, spec, feedback)
        notes.append(f"sales feedback from {feedback_source} set the label of {changed} leads")
    notes.extend(f"{path}: {line}" for line in date_warnings(raw, [spec.time, *spec.dates]))
    report = validate_frame(raw, spec, source=str(path))
    notes.extend(validation_notes(report))
    blocking = [p for p in report.problems if p.level == "error" and p.check != "too_few_examples"]
    if blocking:
        raise UserError(blocking[0].line().removeprefix("error: "))
    frame, dropped = deduplicate(raw, spec)
    if dropped:
        notes.append(f"left out {dropped} duplicate leads (same id or same contact)")
    y_all, known = label_values(frame, spec)
    frame, y_all, known = _within_export(frame, y_all, known, spec, day, notes)
    decided = decided_leads(frame, spec, feedback) if feedback is not None else None
    windows = label_windows(frame, y_all, spec, day, decided)
    note = windows.note(spec.label.within_days)
    if note:
        notes.append(note)
    keep = known & windows.closed
    survival = _survival(frame.loc[known].reset_index(drop=True), y_all[known], spec, day, sql_at, notes)
    data = TrainingData(
        frame=frame.loc[keep].reset_index(drop=True),
        y=y_all[keep].astype(int),
        report=report,
        data_hash=digest,
        dropped=dropped,
        notes=notes,
        windows=windows.to_dict(),
        survival=survival,
    )
    _require_both_classes(data, spec, path)
    return data


def validation_notes(report: ValidationReport, most: int = 8) -> list[str]:
    """What ``validate`` finds, carried into the run's notes and the card (errors stop the run)."""
    warned = [p.line() for p in report.problems if p.level == "warning"]
    shown = [f"validation: {line}" for line in warned[:most]]
    if len(warned) > most:
        shown.append(f"validation: and {len(warned) - most} more warnings (leadscore validate lists them)")
    return shown


def _survival(
    frame: pd.DataFrame,
    y: np.ndarray,
    spec: DatasetSpec,
    day: ExportDay | None,
    sql_at: pd.Series | None,
    notes: list[str],
) -> Survival | None:
    """Every labelled lead with what was seen of it after its scoring time (needs SQL times: a folder
    with a status history, or a flat export's ``label.reached_at``). A lead whose label and SQL time
    disagree (an SQL without its date, a date the label denies) cannot say when: left out, said."""
    if sql_at is None or not spec.id or not spec.time:
        return None
    scored = dates_ms(frame[spec.time])
    first = frame[spec.id].map(sql_at).to_numpy(dtype=np.float64, na_value=np.nan)
    agree = (y == 1) == ~np.isnan(first)
    if not agree.all():
        notes.append(
            f"time to SQL: left out {int((~agree).sum())} leads whose label and "
            f"'{spec.label.reached_at or ' / '.join(spec.label.date_columns or []) or 'status history'}' disagree"
        )
        frame, scored, first = frame.loc[agree].reset_index(drop=True), scored[agree], first[agree]
    return Survival(frame, observed(scored, first, day.ms if day else None, spec.label.within_days))


def _within_export(
    frame: pd.DataFrame,
    y: np.ndarray,
    known: np.ndarray,
    spec: DatasetSpec,
    day: ExportDay | None,
    notes: list[str],
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Leads scored after the export day are not in an export taken that day: left out, said."""
    if day is None or not spec.time:
        return frame, y, known
    inside = ~(dates_ms(frame[spec.time]) > day.ms)
    if inside.all():
        return frame, y, known
    notes.append(f"left out {int((~inside).sum())} leads scored after the export day {day.day}")
    return frame.loc[inside].reset_index(drop=True), y[inside], known[inside]


def _require_both_classes(data: TrainingData, spec: DatasetSpec, path: str | Path) -> None:
    if min(data.n_pos, data.n_neg) < MIN_CLASS_EXAMPLES:
        cmd = f"leadscore points {path}" + (f" --rules {spec.rules}" if spec.rules else "")
        raise UserError(
            f"column '{spec.label.column}': only {data.n_pos} SQL and {data.n_neg} non-SQL examples; at "
            f"least {MIN_CLASS_EXAMPLES} of each are needed to train a model. Use the written points model "
            f"until there is more data: {cmd}"
        )


def deduplicate(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, int]:
    """Drop repeated ids and repeated contacts (email, ignoring case and spaces): keep the first."""
    keep = np.ones(len(frame), dtype=bool)
    if spec.id and spec.id in frame.columns:
        keep &= ~frame[spec.id].duplicated().to_numpy()
    contact = email_column(frame, spec.email)
    if contact is not None:  # the spec's, or found by its values in an export trained with flags
        emails = canonical_texts(frame[contact])
        groups = lead_groups(frame)
        if groups is None:
            repeated = (emails.duplicated() & emails.notna()).to_numpy()
        else:  # a lead's moments share its email: a repeat is another lead's, and drops all its moments
            first = first_moments(frame)
            firsts = emails.loc[first]
            again = groups[first][(firsts.duplicated() & firsts.notna()).to_numpy()]
            repeated = np.isin(groups, again)
        keep &= ~repeated
    return frame.loc[keep].reset_index(drop=True), int((~keep).sum())


def candidate_fields(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[list[str], dict[str, str]]:
    """The fields a model may learn from, and the excluded ones with the reason."""
    reserved = {
        MOMENT_OF,
        MOMENT_NO,
        spec.label.column,
        spec.id,
        spec.time,
        spec.label.reached_at,
        *(spec.label.date_columns or []),
        *spec.time_also,
        *spec.display,  # shown to people, never learned
    }
    reserved -= {None}
    excluded = {col: why for col, why in spec.exclude.items() if col in frame.columns}
    # A spec that lists its fields uses those; one that lists none (only declared engagement, as the
    # shipped CRM specs) learns from every usable column too: a team's custom properties included.
    if spec.fit or (spec.engagement and not spec.declared):
        wanted = [c for c in dict.fromkeys([*spec.features, *spec.dates]) if c in frame.columns]
        return [c for c in wanted if c not in excluded and c not in reserved], excluded
    fields = []
    for col in frame.columns:
        if col in reserved or col in excluded:
            continue
        why = personal_reason(col, frame[col]) or unusable_reason(frame[col], len(frame))
        if why:
            excluded[col] = why
        else:
            fields.append(col)
    return fields, excluded


def split_indices(frame: pd.DataFrame, y: np.ndarray, spec: DatasetSpec, seed: int) -> Split:
    """Fit / validation / test rows: by time when there is a time column, else stratified and seeded."""
    n = len(frame)
    idx = np.arange(n)
    if spec.time and spec.time in frame.columns:
        when = parse_dates(frame[spec.time]).astype("datetime64[ms]").astype(np.int64)
        groups = lead_groups(frame)
        if groups is not None:  # every moment of a lead on the side of its latest moment
            when = pd.Series(when).groupby(groups).transform("max").to_numpy()
        order = np.lexsort((idx, when))
        rest, test = _cut(order, when, n - int(round(TEST_SHARE * n)))
        fit, valid = _cut(rest, when, len(rest) - int(round(VALID_SHARE * len(rest))))
        split = Split(np.sort(fit), np.sort(valid), np.sort(test), "time")
    else:
        rest, test = train_test_split(idx, test_size=TEST_SHARE, stratify=y, random_state=seed)
        fit, valid = train_test_split(rest, test_size=VALID_SHARE, stratify=y[rest], random_state=seed + 1)
        split = Split(np.sort(fit), np.sort(valid), np.sort(test), "stratified")
    for part, rows in (("validation", split.valid), ("test", split.test)):
        if len(np.unique(y[rows])) < 2:
            raise UserError(f"the {part} part has only one class; more data or more SQLs are needed")
    return split


def _cut(order: np.ndarray, when: np.ndarray, at: int) -> tuple[np.ndarray, np.ndarray]:
    """``order`` cut at ``at``, moved past rows of the same time (a lead's moments share its latest)."""
    while 0 < at < len(order) and when[order[at]] == when[order[at - 1]]:
        at += 1
    return order[:at], order[at:]


def lead_groups(frame: pd.DataFrame) -> np.ndarray | None:
    """Each row's lead (its own id) when a lead has several scoring moments, else None."""
    if MOMENT_OF not in frame.columns:
        return None
    return lead_keys(frame[MOMENT_OF]).to_numpy(dtype=object)


def row_groups(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray | None:
    """The rows that must share a cross-fitting fold: a lead's scoring moments, or an account's
    moments (its fit fields nearly name it: a fold holding its other months would score it from
    memory, and the calibration and cutoff set on those scores would promise too much)."""
    if spec.account_of is not None and ACCOUNT_ID in frame.columns:
        return lead_keys(frame[ACCOUNT_ID]).to_numpy(dtype=object)
    return lead_groups(frame)


def weekly_volume(
    frame: pd.DataFrame, time_col: str | None, *, min_weeks: float = 0.0, weight: np.ndarray | None = None
) -> float | None:
    """Leads per week over the data's time span (capacity contracts, MQL volume in the monitor), or
    None without a time column or when the span is shorter than ``min_weeks``; ``weight``: how many
    leads each row stands for (a sample)."""
    if not time_col or time_col not in frame.columns:
        return None
    when = parse_dates(frame[time_col])
    dated = ~np.isnat(when)
    when = when[dated]
    if when.size < 2:
        return None
    weeks = (when.max() - when.min()) / np.timedelta64(7, "D")
    count = when.size if weight is None else float(np.sum(weight[dated]))
    return float(count / weeks) if weeks > 0 and weeks >= min_weeks else None
