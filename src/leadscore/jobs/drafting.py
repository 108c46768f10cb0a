"""``leadscore spec init``: a first dataset spec drafted from an export, every choice with its reason.

A new user should edit a spec rather than write one. The draft names the id, scoring-time and email
columns; the label (a status history's qualified stages, a CRM's lifecycle date columns, or an
outcome column, with its values); each activity table as a log (how it joins the leads, by id or by
email, its time and type columns, its most common types) with a few declared roll-ups; and keeps out,
each with its reason, the roll-ups a CRM counts as of the export, the columns filled in after sales
contact, personal data, constant and identifier-like columns. With ``--crm`` it extends the shipped
spec and writes only what this export adds to it. Every choice is a line with a ``#`` comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from leadscore.data.personal import email_column, personal_reason, unusable_reason
from leadscore.data.sources import read_table
from leadscore.errors import UserError
from leadscore.features.encoder import infer_kind
from leadscore.features.values import lead_key, lead_keys, map_values
from leadscore.modeling.leakage import name_hint
from leadscore.spec import load_spec

SAMPLE = 20_000  # rows of each table read to draft from
ROLLUP = re.compile(
    r"^(number of|num of|# of|count of|total number of|total) ?(unique )?(page ?views|sessions|form|visits|"
    r"sales activities|times contacted|emails?|opens|clicks|submissions|events|calls|meetings|engagements|"
    r"conversions|activities)|\b(last|recent|latest) (activity|engagement|contacted|page seen|conversion|"
    r"visit|modified|email|meeting|call|open|click|submission|sales)",
    re.IGNORECASE,
)
LABEL_DATE = re.compile(r"(sales qualified|\bsql\b|opportunit|converted).*\bdate\b", re.IGNORECASE)
MOMENT_DATE = re.compile(
    r"(marketing qualified|\bmql\b).*\bdate\b|\bmql\b|(?<![a-z])scor(e|ed|ing)(?![a-z])", re.IGNORECASE
)
CREATED = re.compile(r"(?<![a-z])created?(?![a-rt-z])|createddate", re.IGNORECASE)
STAGE = re.compile(r"\b(status|stage|lifecycle)\b|newvalue|new value", re.IGNORECASE)
TYPE = re.compile(r"\b(type|kind|activity|event|action)\b|subtype", re.IGNORECASE)
QUALIFIED = re.compile(r"\bsql\b|sales qualified|opportunit|customer|\bwon\b|converted", re.IGNORECASE)
FIRST_QUALIFIED = re.compile(r"\bsql\b|sales qualified", re.IGNORECASE)
OUTCOME = re.compile(r"convert|\bsql\b|qualified|\bwon\b|outcome|^y$|target|label", re.IGNORECASE)
LEADS = ("leads", "lead", "contacts", "contact", "people", "prospects")
LEAD_REF = re.compile(r"lead|contact|who|prospect|person|record", re.IGNORECASE)


@dataclass
class Draft:
    """The spec's lines (YAML with comments) and what was found, for ``--json``."""

    lines: list[str] = field(default_factory=list)
    found: dict[str, Any] = field(default_factory=dict)

    def key(self, key: str, value: Any, why: str, indent: int = 0) -> None:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
        text = text.removesuffix("...").strip()
        self.lines.append(f"{'  ' * indent}{key}: {text}" + (f"  # {why}" if why else ""))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def draft_spec(path: Path, name: str, crm: str | None = None) -> Draft:
    """The draft spec of the export at ``path`` (a data folder of tables, or one file)."""
    tables = _tables(path)
    leads_name = _leads_table(tables, crm)
    leads = tables.pop(leads_name)
    draft = Draft(found={"leads": leads_name, "tables": sorted(tables)})
    draft.lines.append(f"# A first spec for {path}, drafted by `leadscore spec init`: edit it, then run")
    draft.lines.append("# `leadscore validate` and `leadscore train` with --spec. Each choice says why.")
    if crm is not None:
        return _extending(draft, crm, name, leads, leads_name, tables)
    lead_dates = _dates(leads)  # each table's date columns, found once
    dates = {stem: _dates(table) for stem, table in tables.items()}
    draft.key("name", name, "")
    ident = _id_column(leads)
    draft.key("id", ident, "a different value on every row" if ident else "")
    email = email_column(leads, None)
    if email:
        draft.key(
            "email",
            email,
            "found by its values: repeated contacts are dropped; logs keyed by email join by it",
        )
    _time(draft, lead_dates)
    history = _history(tables, leads, ident, dates)
    _label(draft, leads, history, lead_dates)
    if path.is_dir():
        draft.key(
            "tables", {"leads": leads_name, **({"stages": history[0]} if history else {})}, "file stems"
        )
    logs = _logs(draft, tables, leads, ident, email, dates, skip=history[0] if history else None)
    _definitions(draft, logs)
    reserved = {*draft.found.get("reserved", []), *([ident] if ident else [])}
    _excluded(draft, leads, reserved, lead_dates)
    return draft


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    if path.is_file():
        return {path.stem: read_table(path).head(SAMPLE)}
    if not path.is_dir():
        raise UserError(f"{path}: no such file or folder")
    files = sorted([*path.glob("*.csv"), *path.glob("*.parquet")])
    if not files:
        raise UserError(f"{path}: no .csv or .parquet table in the folder")
    return {f.stem: read_table(f).head(SAMPLE) for f in files}


def _leads_table(tables: dict[str, pd.DataFrame], crm: str | None) -> str:
    if crm is not None:
        stem = load_spec(crm).table("leads")
        if stem not in tables:
            raise UserError(
                f"--crm {crm}: no '{stem}' table, the {crm} spec's leads (have: {', '.join(sorted(tables))})"
            )
        return stem
    named = [t for t in tables if t.casefold() in LEADS]
    return named[0] if named else max(tables, key=lambda t: len(tables[t].columns))


def _id_column(frame: pd.DataFrame) -> str | None:
    for col in frame.columns:
        words = str(col).casefold()
        named = (
            words == "id" or words.endswith((" id", "_id")) or words in ("recordid", "leadid", "contactid")
        )
        if named and frame[col].notna().all() and frame[col].is_unique:
            return str(col)
    return None


def _dates(frame: pd.DataFrame) -> list[str]:
    """Columns whose values are dates, as the encoder reads a column's kind."""
    return [str(col) for col in frame.columns if infer_kind(frame[col]) == "date"]


def _time(draft: Draft, dates: list[str]) -> None:
    moment = [c for c in dates if MOMENT_DATE.search(c)]
    created = [c for c in dates if CREATED.search(c)]
    chosen = list(dict.fromkeys([*moment[:1], *created[:1]])) or dates[:1]
    draft.found["reserved"] = list(chosen)
    if not chosen:
        draft.lines.append("# time: no date column found: without one, features cannot be as of a moment")
        return
    value: Any = chosen if len(chosen) > 1 else chosen[0]
    draft.key("time", value, "the scoring moment" + (": the first filled" if len(chosen) > 1 else ""))


def _history(
    tables: dict[str, pd.DataFrame], leads: pd.DataFrame, ident: str | None, dated: dict[str, list[str]]
) -> tuple[str, dict[str, Any], list[str]] | None:
    """A status history: a table joining the leads, with a time and a stage column (and its stages)."""
    for stem, table in tables.items():
        join = _join_column(table, leads, ident)
        dates = dated[stem]
        stages = [c for c in table.columns if STAGE.search(str(c)) and 1 < table[c].nunique() <= 50]
        if join and dates and stages:
            log: dict[str, Any] = {"id": join, "time": dates[0], "stage": stages[0]}
            field_col = next((c for c in table.columns if str(c).casefold() == "field"), None)
            rows = table
            if field_col is not None and (table[field_col].astype(str).str.casefold() == "status").any():
                log["where"] = {field_col: "Status"}
                rows = table.loc[table[field_col].astype(str).str.casefold() == "status"]
            return stem, log, [str(v) for v in rows[stages[0]].value_counts().index]
    return None


def _label(
    draft: Draft,
    leads: pd.DataFrame,
    history: tuple[str, dict[str, Any], list[str]] | None,
    lead_dates: list[str],
) -> None:
    if history is not None:
        stem, log, values = history
        draft.key("stages", log, f"the status history ({stem}): each row a lead entering a stage")
        draft.found["label"] = "stages"
        draft.lines.append(f"# stages found in {stem}: {', '.join(values[:15])}")
        qualified = [v for v in values if FIRST_QUALIFIED.search(v)] or [
            v for v in values if QUALIFIED.search(v)
        ][:1]
        stages = qualified or ["CHANGE ME: your qualified stage"]
        draft.key("label", {"stages": stages, "within_days": 90}, "SQL: reaching one of these within 90 days")
        return
    dates = [c for c in lead_dates if LABEL_DATE.search(c)]
    if dates:
        draft.found["label"] = "date_columns"
        draft.found.setdefault("reserved", []).extend(dates)
        why = "SQL when one of these dates falls within 90 days after the moment"
        draft.key("label", {"date_columns": dates, "within_days": 90}, why)
        return
    _label_column(draft, leads)


def _label_column(draft: Draft, leads: pd.DataFrame) -> None:
    """A flat export's outcome: a two-valued column named like one, else a status column."""
    binary = [c for c in leads.columns if OUTCOME.search(str(c)) and leads[c].nunique() == 2]
    status = [c for c in leads.columns if STAGE.search(str(c)) and 1 < leads[c].nunique() <= 50]
    if not binary and not status:
        draft.lines.append("# no outcome column found: name yours (and the values that count as SQL)")
        draft.key("label", {"column": "CHANGE ME", "positive": [1]}, "")
        return
    col = (binary or status)[0]
    values = [str(v) for v in leads[col].value_counts().index]
    if binary:
        positive = [v for v in values if v.casefold() in ("1", "1.0", "true", "yes", "y")] or sorted(values)[
            -1:
        ]
    else:
        positive = [v for v in values if QUALIFIED.search(v)] or values[:1]
    draft.found["label"] = "column"
    draft.found.setdefault("reserved", []).append(col)
    draft.lines.append(f"# {col} takes: {', '.join(values[:12])}")
    draft.key("label", {"column": col, "positive": positive}, "the outcome: these values count as SQL")


def _join_column(table: pd.DataFrame, leads: pd.DataFrame, ident: str | None) -> str | None:
    if ident is None:
        return None
    known = set(lead_keys(leads[ident]).dropna())
    # the lead's column, not the table's own row id (an engagement's id may look like a lead's)
    columns = sorted(table.columns, key=lambda c: (not LEAD_REF.search(str(c)), table[c].is_unique))
    for col in columns:
        keys = map_values(table[col].head(2_000), lead_key).dropna()
        if len(keys) and keys.isin(known).mean() >= 0.3:
            return str(col)
    return None


def _logs(
    draft: Draft,
    tables: dict[str, pd.DataFrame],
    leads: pd.DataFrame,
    ident: str | None,
    email: str | None,
    dated: dict[str, list[str]],
    skip: str | None,
) -> dict[str, tuple[pd.DataFrame, str | None]]:
    """Each activity table as a named log (``events:``), and its type column."""
    logs: dict[str, tuple[pd.DataFrame, str | None]] = {}
    lines: list[tuple[str, dict[str, Any], str]] = []
    for stem, table in tables.items():
        if stem == skip:
            continue
        log, why = _log_of(table, leads, ident, email, dated[stem])
        if log is None:
            draft.lines.append(f"# {stem}: not read ({why})")
            continue
        name = re.sub(r"[^a-z0-9]+", "_", stem.casefold()).strip("_") or "log"
        if "type_value" in log:
            log["type_value"] = stem.replace("_", " ").strip().title()  # one kind of row: the table's
        lines.append((name, {"table": stem, **log}, why))
        typed = log.get("type") or next(iter(_low_cardinality(table, log)), None)
        logs[name] = (table, typed)
    if lines:
        draft.lines.append("events:  # the activity tables, each a log joined to the leads")
        for name, log, why in lines:
            draft.key(name, log, why, indent=1)
    return logs


def _log_of(
    table: pd.DataFrame, leads: pd.DataFrame, ident: str | None, email: str | None, dates: list[str]
) -> tuple[dict[str, Any] | None, str]:
    if not dates:
        return None, "no time column"
    join = _join_column(table, leads, ident)
    key: dict[str, Any]
    if join is not None:
        key = {"id": join}
    else:
        by_email = email_column(table, None)
        if by_email is None or email is None:
            return None, "no column joins the leads' ids or emails"
        key = {"email": by_email}
    log = {**key, "time": dates[0]}
    typed = _low_cardinality(table, log)
    kinds = [c for c in typed if TYPE.search(c)]
    shown = (kinds or typed)[:1]
    top = ", ".join(map(str, table[shown[0]].value_counts().head(5).index)) if shown else ""
    why = f"{len(table):,} rows read" + (f"; most common {shown[0]}: {top}" if shown else "")
    return {**log, **({"type": kinds[0]} if kinds else {"type_value": "Activity"})}, why


def _low_cardinality(table: pd.DataFrame, log: dict[str, Any]) -> list[str]:
    """Text columns of a few values (a type, a form's name): not the log's id, email or time."""
    taken = {v for k, v in log.items() if k in ("id", "email", "time")}
    return [
        str(c)
        for c in table.columns
        if c not in taken and not pd.api.types.is_numeric_dtype(table[c]) and 1 < table[c].nunique() <= 50
    ]


def _definitions(draft: Draft, logs: dict[str, tuple[pd.DataFrame, str | None]]) -> None:
    if not logs:
        return
    draft.lines.append(
        "engagement:  # a few roll-ups per log, as of each lead's scoring moment: add your own"
    )
    for name, (table, type_col) in logs.items():
        draft.key(
            f"{name}_30d",
            {"count": "any", "days": 30, "log": name},
            f"every {name} row in the 30 days before",
            1,
        )
        draft.key(f"days_since_last_{name}", {"days_since_last": "any", "log": name}, "recency", 1)
        if type_col is None:
            continue
        for value in table[type_col].value_counts().head(3).index:
            slug = re.sub(r"[^a-z0-9]+", "_", str(value).casefold()).strip("_")[-30:].strip("_")
            count = {"count": "any", "where": {type_col: str(value)}}  # by value: a missing one reads 0
            draft.key(f"{name}_{slug}_30d", {**count, "days": 30, "log": name}, f"a common {type_col}", 1)


def _excluded(
    draft: Draft,
    leads: pd.DataFrame,
    reserved: set[str],
    lead_dates: list[str],
    known: set[str] | None = None,
) -> None:
    """Columns kept out, each with its reason (``known``: already kept out by the spec extended)."""
    reasons: dict[str, str] = {}
    dates = set(lead_dates)
    for col in leads.columns:
        if col in reserved or str(col) in (known or set()):
            continue
        why = _why_out(str(col), leads[col], dates)
        if why:
            reasons[str(col)] = why
    if reasons:
        draft.lines.append("exclude:  # kept out of the model, each with its reason")
        for col, why in reasons.items():
            draft.key(col, why, "", indent=1)
    draft.found["excluded"] = reasons


def _why_out(col: str, series: pd.Series, dates: set[str]) -> str | None:
    personal = personal_reason(col, series)
    if personal:
        return personal
    if ROLLUP.search(col):
        return "counted as of the export (includes activity after the scoring moment)"
    hint = name_hint(col)
    if hint:
        return (
            f"filled in after sales contact ('{hint}' in its name): keep it only if it is known when scored"
        )
    if col in dates:
        return "a date: list it under 'dates' if it is known when the lead is scored (else it leaks)"
    return unusable_reason(series, len(series))


def _extending(
    draft: Draft, crm: str, name: str, leads: pd.DataFrame, leads_name: str, tables: dict[str, pd.DataFrame]
) -> Draft:
    """A spec over the shipped one: this export's name, what it lacks, and what else it keeps out."""
    shipped = load_spec(crm)
    draft.key("extends", crm, f"the shipped {crm} spec: its tables, label, logs and exclusions")
    draft.key("name", name, "")
    for log_name in shipped.logs:
        stem = shipped.log_table(log_name)
        state = (
            "found"
            if stem in tables
            else ("absent: optional" if shipped.logs[log_name].optional else "MISSING")
        )
        draft.lines.append(f"# log {log_name}: {stem} {state}")
    reserved = {
        c for c in (shipped.id, shipped.time, *shipped.time_also, *(shipped.label.date_columns or [])) if c
    }
    missing = [c for c in reserved if c not in leads.columns]
    if missing:
        draft.lines.append(f"# the {crm} spec reads {', '.join(missing)}: not in {leads_name}; name yours")
    _excluded(draft, leads, reserved, _dates(leads), known=set(shipped.exclude))
    return draft
