"""Account engagement as of a moment: the spec's account definitions over the events of all an
account's leads, never reading an event, a lead's creation or a role after the moment.

The events are sorted by time once and each definition's type, log, ``where`` and ``role`` mask is
computed once; a moment then reads a prefix of the sorted events (its window a slice of it), so many
moments cost a few array slices each, not a pass over the log. The lead family of aggregations is
the lead engine's own (``rollups.aggregate``); the group kinds count distinct leads (``contacts``),
distinct declared roles (``roles``) and leads created in the last N days (``new_contacts``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from leadscore.features.rollups import NAT_MS, Coded, aggregate, distinct_per_row, type_mask, where_mask
from leadscore.features.values import MS_PER_DAY, to_epoch_ms
from leadscore.spec import AccountAggregation, ActivityColumns, Aggregation

RolePatterns = Mapping[str, str | list[str]]


def lead_roles(leads: pd.DataFrame, roles: Mapping[str, RolePatterns]) -> dict[str, np.ndarray]:
    """Each declared role as a mask over the leads: a lead holds a role when any of its columns
    matches one of the role's patterns (``*`` wildcards, case ignored, as ``where``)."""
    out: dict[str, np.ndarray] = {}
    for role, columns in roles.items():
        held = np.zeros(len(leads), dtype=bool)
        for column, wanted in columns.items():
            held |= where_mask(Coded(leads[column]), wanted)
        out[role] = held
    return out


@dataclass(frozen=True)
class AccountActivity:
    """The activity of all matched leads, sorted by time (or, read for one moment, as the log holds
    it): each event's account row and lead row, the leads' account rows, creation times and roles."""

    events: pd.DataFrame  # only events of matched leads with a readable time
    columns: ActivityColumns
    times: np.ndarray  # epoch ms, ascending when ``ordered``
    account: np.ndarray  # each event's account row
    lead: np.ndarray  # each event's lead row
    lead_account: np.ndarray  # each lead's account row (-1: unmatched)
    lead_created: np.ndarray  # each lead's creation (epoch ms; NAT_MS unknown)
    roles: dict[str, np.ndarray]  # role -> mask over the leads
    n_accounts: int
    ordered: bool = True  # events in time order (False: the log's own order, every event by one moment)

    def latest(self) -> float | None:
        """The latest event's time (epoch ms), None without events."""
        if not len(self.times):
            return None
        return float(self.times[-1] if self.ordered else self.times.max())


def lead_rows(lead_ids: pd.Series, wanted: pd.Series) -> np.ndarray:
    """Each of ``wanted``'s ids as the row of the leads table holding it (the first, for an id the
    table repeats; -1 for one it lacks). Ids are compared as written: a folder's tables are put in
    the leads' form when read."""
    codes, uniques = pd.factorize(lead_ids, use_na_sentinel=True)
    first = np.full(len(uniques), -1, dtype=np.int64)
    rows = np.arange(len(codes))[::-1]
    ok = codes[::-1] >= 0
    first[codes[::-1][ok]] = rows[ok]  # written last to first: the first row wins
    found = pd.Index(uniques).get_indexer(wanted)
    return np.where(found >= 0, first[np.maximum(found, 0)], -1)


def account_activity(
    events: pd.DataFrame,
    columns: ActivityColumns,
    lead_ids: pd.Series,
    lead_account: np.ndarray,
    lead_created: np.ndarray,
    roles: dict[str, np.ndarray],
    n_accounts: int,
    keep_columns: Sequence[str] | None = None,
    until_ms: float | None = None,
) -> AccountActivity:
    """The events of matched leads (``lead_ids``: the leads table's ids, row by row with
    ``lead_account``), each with its account and lead row, sorted by time; ``keep_columns``: the
    event columns the definitions read (default: all). ``until_ms``: read for that one moment, so
    later events are dropped and the rest stay in the log's order (a roll-up at one moment does not
    need time order, and sorting 26M events was the largest part of scoring accounts as of one)."""
    lead = lead_rows(lead_ids, events[columns.id])
    times = to_epoch_ms(events[columns.time])
    account = np.where(lead >= 0, lead_account[np.maximum(lead, 0)], -1)
    keep = (account >= 0) & (times != NAT_MS)
    if until_ms is not None:  # scored as of one moment: what happened later is never read, so not kept
        keep &= times <= until_ms
    order = np.flatnonzero(keep)
    if until_ms is None:
        order = order[np.argsort(times[keep], kind="stable")]
    if keep_columns is not None:
        events = events[list(dict.fromkeys(c for c in keep_columns if c in events.columns))]
    return AccountActivity(
        events=_as_categories(events).iloc[order].reset_index(drop=True),
        columns=columns,
        times=times[order],
        account=account[order].astype(np.int64),
        lead=lead[order].astype(np.int64),
        lead_account=lead_account,
        lead_created=lead_created,
        roles=roles,
        n_accounts=n_accounts,
        ordered=until_ms is None,
    )


def _as_categories(events: pd.DataFrame) -> pd.DataFrame:
    """Text columns dictionary-encoded (categories): reordering millions of events then moves integer
    codes, not strings (Arrow's take of text was the largest part of scoring accounts as of a moment),
    and the definitions' masks read the codes as they are."""
    out = {}
    for name in events.columns:
        column = events[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or not (
            column.dtype == object or pd.api.types.is_string_dtype(column.dtype)
        ):
            out[name] = column
            continue
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        out[name] = pd.Series(pd.Categorical.from_codes(codes, categories=uniques), index=column.index)
    return pd.DataFrame(out, index=events.index)


def static_mask(
    activity: AccountActivity, d: Aggregation, coded: dict[str, Coded], log: str | None
) -> np.ndarray:
    """The events a definition reads whatever the moment: its types, its log, ``where``, ``role``
    (``coded``: each column read once, shared by the definitions)."""

    def column(name: str, raw: bool = False) -> Coded:
        if name not in coded:
            coded[name] = Coded(activity.events[name], raw)
        return coded[name]

    cols = activity.columns
    mask = type_mask(column(cols.type), d.types)
    if cols.log is not None and log is not None:
        mask = mask & column(cols.log, raw=True).mask(partial(operator.eq, log))
    for where_col, wanted in d.where.items():
        mask = mask & where_mask(column(where_col), wanted)
    if d.role is not None:
        mask = mask & activity.roles[d.role][activity.lead]
    return mask


class AccountRollups:
    """The account definitions over one ``AccountActivity``: static masks once, then any moment."""

    def __init__(
        self,
        activity: AccountActivity,
        definitions: Mapping[str, AccountAggregation],
        log_of: Mapping[str, str] | None = None,
    ) -> None:
        self.activity = activity
        self.definitions = dict(definitions)
        coded: dict[str, Coded] = {}
        self.masks: dict[str, np.ndarray] = {
            name: static_mask(activity, d, coded, log_of[name] if log_of is not None else None)
            for name, d in self.definitions.items()
            if d.kind != "new_contacts"
        }

    def at(self, moment_ms: int) -> pd.DataFrame:
        """Every account's features as of ``moment_ms`` (one row per account row, in order)."""
        windows: dict[float | None, tuple[slice, np.ndarray | None]] = {}
        out: dict[str, np.ndarray] = {}
        for name, d in self.definitions.items():
            if d.kind == "new_contacts":
                out[name] = self._new_contacts(d, moment_ms)
                continue
            if d.days not in windows:
                windows[d.days] = self._window(moment_ms, d.days)
            out[name] = self._one(name, d, moment_ms, *windows[d.days])
        return pd.DataFrame(out)

    def _window(self, moment_ms: int, days: float | None) -> tuple[slice, np.ndarray | None]:
        """The events by ``moment_ms`` (and within ``days`` before it): a slice of time-ordered
        events, or every event and a mask of those in the window."""
        times = self.activity.times
        since = None if days is None else moment_ms - days * MS_PER_DAY
        if not self.activity.ordered:
            inside = times <= moment_ms
            return slice(None), inside if since is None else inside & (times >= since)
        end = int(np.searchsorted(times, moment_ms, side="right"))  # nothing after the moment
        start = 0 if since is None else int(np.searchsorted(times, since, side="left"))
        return slice(start, end), None

    def _one(
        self, name: str, d: AccountAggregation, moment_ms: int, part: slice, inside: np.ndarray | None
    ) -> np.ndarray:
        act, n = self.activity, self.activity.n_accounts
        mask = self.masks[name][part]
        if inside is not None:
            mask = mask & inside
        rows = act.account[part]
        if d.kind == "contacts":
            return distinct_per_row(rows[mask], act.lead[part][mask], n)
        if d.kind == "roles":
            lead = act.lead[part][mask]
            count = np.zeros(n, dtype=np.int64)
            for held in act.roles.values():
                count += np.bincount(rows[mask][held[lead]], minlength=n) > 0
            return count
        times = act.times[part]
        age = (moment_ms - times) / MS_PER_DAY
        events = act.events.iloc[part] if d.attribute is not None else act.events
        return aggregate(d, mask, rows, age, times, events, n)

    def _new_contacts(self, d: AccountAggregation, moment_ms: int) -> np.ndarray:
        act = self.activity
        assert d.new_contacts is not None
        created = act.lead_created
        new = (
            (act.lead_account >= 0)
            & (created != NAT_MS)
            & (created <= moment_ms)
            & (created >= moment_ms - d.new_contacts * MS_PER_DAY)  # as an event's ``days``
        )
        if d.role is not None:
            new &= act.roles[d.role]
        return np.bincount(act.lead_account[new], minlength=act.n_accounts).astype(np.int64)


def first_event(activity: AccountActivity) -> np.ndarray:
    """Each account's first event (epoch ms; NAT_MS without one)."""
    first = np.full(activity.n_accounts, np.iinfo(np.int64).max)
    np.minimum.at(first, activity.account, activity.times)
    return np.where(first == np.iinfo(np.int64).max, NAT_MS, first)
