"""A folder's activity logs read into one activity table, as the one engine reads it.

One plain log (``events: {id, time, type}``) is read as it is (``folders``). Several named logs, or
one keyed by email or of a single kind, are each read from their own table and stacked under the
columns ``spec.activity`` names: the lead's id (a log keyed by ``email`` is joined to the leads by
the email written the same once case and spaces are ignored), the time, the type (``type_value`` for
a table of one kind), and the log's name; every other column is kept for ``where`` and attribute
definitions. A row whose email matches no lead keeps a missing id: it is never read for a feature,
and ``validate`` counts it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.joins import joined
from leadscore.data.personal import email_column
from leadscore.data.sources import find_table, read_table
from leadscore.errors import UserError
from leadscore.features.values import canonical_category, lead_keys, map_values
from leadscore.spec import ActivityColumns, DatasetSpec, EventLog, read_columns


def require_columns(present: Iterable[str], source: str, kind: str, columns: dict[str, str]) -> None:
    """Each column a spec key (``<kind>.<key>``) names must be in the table (one line naming the key)."""
    have = set(present)
    for key, column in columns.items():
        if column not in have:
            raise UserError(f"spec key '{kind}.{key}': column '{column}' is not in {source}")


def log_key(spec: DatasetSpec, name: str) -> str:
    """The spec key of one log: ``events`` for the one log, ``events.<name>`` for a named one."""
    return "events" if isinstance(spec.events, EventLog) else f"events.{name}"


def stacked_logs(folder: Path, spec: DatasetSpec, leads: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    """Every log of ``spec`` from ``folder`` in one table (``spec.activity``'s columns), and the
    files' names. With the leads, ids are put in their form and emails joined to their ids."""
    columns = spec.activity
    assert columns is not None and columns.log is not None
    parts: list[pd.DataFrame] = []
    sources: list[str] = []
    for name, log in spec.logs.items():
        part, source = _one_log(folder, spec, name, log, leads, columns)
        parts.append(part)
        sources.append(source)
    stacked = pd.concat(parts, ignore_index=True, sort=False)
    for column in read_columns(spec.declared):  # a column no present log has (an absent optional one's)
        if column not in stacked.columns:
            stacked[column] = pd.Series([None] * len(stacked), dtype=object)
    return stacked, ", ".join(sources)


def _one_log(
    folder: Path,
    spec: DatasetSpec,
    name: str,
    log: EventLog,
    leads: pd.DataFrame | None,
    columns: ActivityColumns,
) -> tuple[pd.DataFrame, str]:
    key = log_key(spec, name)
    stem = spec.log_table(name)
    path = find_table(folder, stem)
    if path is None and log.optional:  # an export without it: an empty log
        empty = {c: pd.Series(dtype=object) for c in (columns.id, columns.time, columns.type, columns.log)}
        return pd.DataFrame(empty), f"{stem} (absent)"
    if path is None:
        where = "tables.events" if key == "events" and not log.table else f"{key}.table"
        raise UserError(f"{folder}: no '{stem}' table (.csv or .parquet) for spec key '{where}'")
    table = read_table(path)
    require_columns(table.columns, path.name, key, log.columns())
    if log.join is not None:
        table = _joined_table(folder, table, log, key, path.name)
    lead_ids = leads[spec.id] if leads is not None and spec.id else None
    if log.email is not None:
        ids = _ids_by_email(table[log.email], leads, spec, key)
    elif lead_ids is not None:
        assert log.id is not None
        ids = joined(table, log.id, lead_ids, path.name, key)[log.id]
    else:
        assert log.id is not None
        ids = table[log.id]
    kinds = table[log.type] if log.type is not None else pd.Series(log.type_value, index=table.index)
    stacked = table.assign(**{columns.id: ids.to_numpy(), columns.time: table[log.time], columns.type: kinds})
    assert columns.log is not None
    stacked[columns.log] = name
    return stacked, path.name


def _ids_by_email(emails: pd.Series, leads: pd.DataFrame | None, spec: DatasetSpec, key: str) -> pd.Series:
    """Each row's lead id by its email (the first lead with that email; missing where none has it)."""
    if leads is None or not spec.id:
        raise UserError(f"spec key '{key}.email': a log keyed by email needs the leads (spec key 'id')")
    column = email_column(leads, spec.email)
    if column is None:
        where = f"column '{spec.email}' is not in the leads table" if spec.email else "no email column found"
        raise UserError(f"spec key '{key}.email': joins by the leads' email, but {where} (spec key 'email')")
    known = pd.DataFrame(
        {"email": map_values(leads[column], canonical_category).to_numpy(), "id": leads[spec.id].to_numpy()}
    ).dropna(subset=["email"])
    by_email = known.drop_duplicates("email").set_index("email")["id"]
    return map_values(emails, canonical_category).map(by_email)


def all_logs_found(folder: Path, spec: DatasetSpec) -> bool:
    """Every log's table is in the folder (an optional one may be absent)."""
    return all(
        log.optional or find_table(folder, spec.log_table(name)) is not None
        for name, log in spec.logs.items()
    )


def _joined_table(folder: Path, table: pd.DataFrame, log: EventLog, key: str, source: str) -> pd.DataFrame:
    """``table`` with the columns of the rows its ``join.by`` column names, as ``<table>.<column>``."""
    join = log.join
    assert join is not None
    require_columns(table.columns, source, f"{key}.join", {"by": join.by})
    path = find_table(folder, join.table)
    if path is None:
        raise UserError(
            f"{folder}: no '{join.table}' table (.csv or .parquet) for spec key '{key}.join.table'"
        )
    other = read_table(path)
    require_columns(other.columns, path.name, f"{key}.join", {"id": join.id})
    right = lead_keys(other[join.id]).to_numpy(dtype=object)
    first = ~pd.Index(right).duplicated()  # an id given twice: its first row
    other = other.loc[first].rename(columns=lambda c: f"{join.table}.{c}")
    left = lead_keys(table[join.by]).to_numpy(dtype=object)
    position = pd.Index(right[first]).get_indexer(left)
    joined_rows = other.iloc[np.where(position >= 0, position, 0)].reset_index(drop=True)
    found = np.broadcast_to((position >= 0)[:, None], joined_rows.shape)
    joined_rows = joined_rows.astype(object).where(found, None)
    return pd.concat([table.reset_index(drop=True), joined_rows], axis=1)
