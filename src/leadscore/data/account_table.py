"""The accounts' table as of their moments: one row per account and moment, with the account's fit
fields, its engagement as of the moment (``features/accounts.py``) and, for training, its label.

Moments are a grid (every month's 1st, every Monday, or every N days from the first event's day, all
00:00 UTC). For training, an account's moments run from its first event to the last moment whose
label window lies inside the data (the export day); an account with an opportunity created in the
``within_days`` before a moment is already in the pipeline then: that moment is left out, counted.
For scoring, every account with an event is scored at one moment (``as_of``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.account_scope import activity_of
from leadscore.data.accounts import AccountTables, accounts_of, read_account_tables
from leadscore.data.folders import declared_table, folder_activity
from leadscore.data.history import folded_stages
from leadscore.data.maturity import parse_observed_until
from leadscore.errors import UserError
from leadscore.features.accounts import (
    AccountActivity,
    AccountRollups,
    first_event,
)
from leadscore.features.rollups import NAT_MS
from leadscore.features.values import MS_PER_DAY, lead_keys, to_epoch_ms
from leadscore.spec import AccountsSpec, DatasetSpec, LabelRule, read_columns
from leadscore.spec.accounts import AccountLabel
from leadscore.spec.activity import ACTIVITY, definitions_by_log

ACCOUNT_ID = "account_id"
MOMENT = "moment"
MOMENT_ID = "account_moment"  # "<account id>@<moment's day>": the row's id
LABEL = "opportunity"  # 1: an opportunity (or a stage) within the label window after the moment
ROW = "__account_row"  # the account's row in the accounts table (not a feature)
WEEK_MS = 7 * MS_PER_DAY


@dataclass
class AccountTable:
    """The accounts at their moments, and what was counted on the way."""

    frame: pd.DataFrame
    tables: AccountTables
    export_ms: float
    activity: AccountActivity  # the matched leads' activity by account row (more roll-ups read it)
    counts: dict[str, int] = field(default_factory=dict)


def label_of(spec: DatasetSpec) -> AccountLabel:
    """The accounts' label (one line naming the key where the spec has none)."""
    label = accounts_of(spec).label
    if label is None:
        raise UserError(f"spec '{spec.name}': key 'accounts.label' is needed to train an account model")
    return label


def moment_grid(every: str | float, start_ms: float, end_ms: float) -> np.ndarray:
    """The moments from ``start_ms`` (the first at or after it) to ``end_ms`` (inclusive), epoch ms."""
    if end_ms < start_ms:
        return np.array([], dtype=np.int64)
    start = np.datetime64(int(start_ms), "ms")
    if every == "month":
        first = start.astype("datetime64[M]")
        if first.astype("datetime64[ms]") < start:
            first = first + 1
        last = np.datetime64(int(end_ms), "ms").astype("datetime64[M]")
        months = np.arange(first, last + 1, dtype="datetime64[M]")
        return months.astype("datetime64[ms]").astype(np.int64)
    if every == "week":  # Mondays: 1970-01-01 was a Thursday, so Mondays are 4 days on from it
        step = WEEK_MS
        origin = 4 * MS_PER_DAY
    else:
        step = int(float(every) * MS_PER_DAY)
        origin = int(np.floor(start_ms / MS_PER_DAY) * MS_PER_DAY)
    first_ms = origin + int(np.ceil((start_ms - origin) / step)) * step
    return np.arange(first_ms, int(end_ms) + 1, step, dtype=np.int64)


def account_table(
    folder: str | Path, spec: DatasetSpec, *, as_of: float | None = None, every_column: bool = False
) -> AccountTable:
    """Every account at each of its training moments with its label, or (``as_of``, epoch ms) every
    account with an event by then at that one moment, without a label (``every_column``: the leads'
    table keeps all its columns, for a report that scores each person)."""
    acc = accounts_of(spec)
    tables = read_account_tables(folder, spec, every_column=every_column)
    activity = _activity(Path(folder), spec, tables, as_of)
    export_ms = _export_ms(spec, tables, activity)
    if as_of is not None:
        moments = np.array([int(as_of)], dtype=np.int64)
    else:
        firsts = first_event(activity)
        started = firsts[firsts != NAT_MS]
        moments = training_moments(spec, float(started.min()) if len(started) else export_ms + 1, export_ms)
    labels = (
        _label_times(Path(folder), spec, acc, tables) if as_of is None and acc.label is not None else None
    )
    frame, counts = account_rows(tables, activity, spec, moments, labels)
    return AccountTable(frame, tables, export_ms, activity, counts)


def training_moments(spec: DatasetSpec, start_ms: float, export_ms: float) -> np.ndarray:
    """The training moments: from the first event to the last whose label window ends by the export."""
    label = label_of(spec)
    return moment_grid(accounts_of(spec).moments.every, start_ms, export_ms - label.within_days * MS_PER_DAY)


def account_rows(
    tables: AccountTables,
    activity: AccountActivity,
    spec: DatasetSpec,
    moments: np.ndarray,
    label_times: pd.DataFrame | None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The accounts with an event by each moment, at it, with their fit fields and (``label_times``:
    each account row's label events) their label, moments already in the pipeline left out."""
    acc = accounts_of(spec)
    engine = AccountRollups(activity, acc.engagement, definitions_by_log(acc.engagement, spec.logs))
    firsts = first_event(activity)
    parts = [_at_moment(engine, firsts, int(m)) for m in moments]
    rows = pd.concat(parts, ignore_index=True) if parts else _at_moment(engine, firsts, 0).iloc[:0]
    counts: dict[str, int] = {"accounts": int((firsts != NAT_MS).sum()), "moments": len(moments)}
    if label_times is not None:
        rows, counts["in_pipeline"] = _labelled(rows, label_times, acc)
    return _with_fit(rows, tables, acc), counts


def _activity(folder: Path, spec: DatasetSpec, tables: AccountTables, until: float | None) -> AccountActivity:
    """The leads' activity keyed by account row (an empty log without a declared one); ``until``:
    the moment scored, after which nothing is kept."""
    if spec.activity is not None:
        wanted = read_columns({**spec.definitions, **accounts_of(spec).engagement})  # the attributes read
        events, _ = folder_activity(folder, spec, None, tables.leads, wanted)
        return activity_of(events, spec.activity, tables, spec, until_ms=until)
    events = pd.DataFrame({ACTIVITY.id: [], ACTIVITY.time: [], ACTIVITY.type: []})
    return activity_of(events, ACTIVITY, tables, spec)


def _export_ms(spec: DatasetSpec, tables: AccountTables, activity: AccountActivity) -> float:
    """The export day: the spec's ``observed_until``, else the latest event, lead or opportunity."""
    given = parse_observed_until(spec.observed_until, "spec key 'observed_until'")
    if given is not None:
        return given
    latest = activity.latest()
    found = [latest] if latest is not None else []
    created = activity.lead_created[activity.lead_created != NAT_MS]
    found += [float(created.max())] if len(created) else []
    acc = accounts_of(spec)
    if tables.opportunities is not None and acc.label is not None and acc.label.opportunities is not None:
        opened = to_epoch_ms(tables.opportunities[acc.label.opportunities.time])
        opened = opened[opened != NAT_MS]
        found += [float(opened.max())] if len(opened) else []
    if not found:
        raise UserError(
            f"spec '{spec.name}': no time in the leads, activity or opportunities to date the export"
        )
    return max(found)


def _at_moment(engine: AccountRollups, firsts: np.ndarray, moment: int) -> pd.DataFrame:
    """The accounts whose first event is at or before ``moment``, with their features then."""
    return _rows_at(engine, np.flatnonzero((firsts != NAT_MS) & (firsts <= moment)), moment)


def _rows_at(engine: AccountRollups, rows: np.ndarray, moment: int) -> pd.DataFrame:
    """The accounts of ``rows`` with their features at ``moment``, their row and the moment."""
    features = engine.at(moment).iloc[rows].reset_index(drop=True)
    features.insert(0, ROW, rows)
    features.insert(1, MOMENT, np.full(len(rows), moment, dtype=np.int64))
    return features


def _label_times(folder: Path, spec: DatasetSpec, acc: AccountsSpec, tables: AccountTables) -> pd.DataFrame:
    """What makes a moment positive, per account row: opportunities' creation times, or the times
    the account's leads entered one of ``label.stages``."""
    assert acc.label is not None
    if acc.label.opportunities is not None:
        return opportunity_times(tables, acc)
    if spec.stages is None:
        raise UserError("spec key 'accounts.label.stages': the spec declares no status history ('stages')")
    history, _ = declared_table(
        folder, spec, "stages", spec.stages.columns(), None, tables.leads[spec.id or ""]
    )
    entries = label_stage_entries(history, spec)
    matched = tables.matches.frame.set_index("lead_id")["account_id"]
    account = entries["lead"].map(matched).fillna("")
    return label_times(tables, acc, account.to_numpy(dtype=object), entries["t"].to_numpy())


def label_stage_entries(history: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The rows of a status history (its stage changes) where a lead enters one of the account
    label's stages, compared trimmed and case-folded: each one's lead key and time (epoch ms)."""
    acc = accounts_of(spec)
    assert spec.stages is not None and acc.label is not None
    wanted = {s.strip().casefold() for s in acc.label.stages or []}
    rows = history.loc[pd.Series(folded_stages(history[spec.stages.stage])).isin(wanted).to_numpy()]
    keys = lead_keys(rows[spec.stages.id]).to_numpy(dtype=object)
    return pd.DataFrame({"lead": keys, "t": to_epoch_ms(rows[spec.stages.time])})


def opportunity_times(tables: AccountTables, acc: AccountsSpec) -> pd.DataFrame:
    """Each opportunity's account row (-1: not among ``tables.accounts``) and creation time."""
    assert acc.label is not None and acc.label.opportunities is not None
    opps = tables.opportunities
    assert opps is not None
    named = acc.label.opportunities
    return label_times(
        tables, acc, lead_keys(opps[named.id]).to_numpy(dtype=object), to_epoch_ms(opps[named.time])
    )


def label_times(
    tables: AccountTables, acc: AccountsSpec, accounts: np.ndarray, times: np.ndarray
) -> pd.DataFrame:
    """Label events (each one's account key and time) as account rows (-1: not among
    ``tables.accounts``) and times."""
    keys = pd.Index(lead_keys(tables.accounts[acc.id]).to_numpy(dtype=object))
    return pd.DataFrame({"row": keys.get_indexer(accounts), "t": times})


def _labelled(rows: pd.DataFrame, events: pd.DataFrame, acc: AccountsSpec) -> tuple[pd.DataFrame, int]:
    """Each moment's label (a label event after it, within the window); moments with one in the
    window before (already in the pipeline) left out, and counted."""
    assert acc.label is not None
    window = int(acc.label.within_days * MS_PER_DAY)
    ok = (events["row"].to_numpy() >= 0) & (events["t"].to_numpy() != NAT_MS)
    times = events["t"].to_numpy()[ok].astype(np.int64)
    moments = rows[MOMENT].to_numpy(dtype=np.int64)
    every = np.concatenate([times, moments])
    if not len(every):
        return rows.assign(**{LABEL: np.zeros(len(rows), dtype=np.int8)}), 0
    # account row and time in one sortable int64 key: times from the earliest, less a window
    t0 = int(every.min()) - window - 1
    span = np.int64(int(every.max()) + window + 2 - t0)
    keys = np.sort(events["row"].to_numpy()[ok].astype(np.int64) * span + (times - t0))
    base = rows[ROW].to_numpy(dtype=np.int64) * span + (moments - t0)
    after = np.searchsorted(keys, base + window, "right") - np.searchsorted(keys, base, "right")
    before = np.searchsorted(keys, base, "right") - np.searchsorted(keys, base - window, "right")
    pipeline = before > 0
    out = rows.loc[~pipeline].reset_index(drop=True)
    out[LABEL] = (after[~pipeline] > 0).astype(np.int8)
    return out, int(pipeline.sum())


def _with_fit(rows: pd.DataFrame, tables: AccountTables, acc: AccountsSpec) -> pd.DataFrame:
    """The rows with the account's id, the moment as a time, the row's id and the fit fields."""
    accounts = tables.accounts.iloc[rows[ROW].to_numpy()].reset_index(drop=True)
    ids = lead_keys(accounts[acc.id]).to_numpy(dtype=object)
    moments = rows[MOMENT].to_numpy(dtype=np.int64)
    distinct, each = np.unique(moments, return_inverse=True)  # a few moments: each day written once
    days = np.array(
        [str(np.datetime64(int(m), "ms").astype("datetime64[D]")) for m in distinct], dtype=object
    )
    head = pd.DataFrame(
        {
            MOMENT_ID: ids + "@" + days[each.reshape(-1)] if len(ids) else ids,
            ACCOUNT_ID: ids,
            MOMENT: pd.to_datetime(moments, unit="ms"),
        }
    )
    fit = accounts[[c for c in acc.fit if c not in head.columns]]
    rest = rows.drop(columns=[MOMENT])
    return pd.concat([head, fit, rest], axis=1)


def account_model_spec(spec: DatasetSpec, export_ms: float) -> DatasetSpec:
    """The spec of the account model's rows: an account at a moment (``MOMENT_ID``, ``MOMENT``), its
    fit and engagement fields, the label, the export day; ``account_of`` keeps the dataset spec."""
    acc = accounts_of(spec)
    label = label_of(spec)
    days = label.within_days
    return DatasetSpec(
        name=f"{spec.name}-accounts",
        description=f"the accounts of {spec.name}, scored at each moment for P(opportunity)",
        id=MOMENT_ID,
        time=MOMENT,
        fit=[*acc.fit, *[name for name in acc.engagement if name not in acc.fit]],
        categorical=list(acc.categorical),
        label=LabelRule(
            column=LABEL,
            positive=[1],
            negative=[0],
            within_days=days,
            description=label.description or f"an opportunity created within {days:g} days of the moment",
        ),
        exclude={ACCOUNT_ID: "the account's identifier", ROW: "the account's row in the accounts table"},
        placeholders=list(spec.placeholders),
        observed_until=datetime.fromtimestamp(export_ms / 1000, tz=UTC).replace(tzinfo=None),
        account_of=spec,
    )
