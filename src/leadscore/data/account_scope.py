"""A folder's leads with their ``scope: account`` features: each lead's account found by the one
matcher, the account's leads' activity read once, each definition rolled up over the lead's account
as of the lead's own scoring time (``features/account_scope.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.accounts import AccountTables, accounts_of, read_account_tables
from leadscore.errors import UserError
from leadscore.features.account_scope import AccountScope
from leadscore.features.accounts import AccountActivity, account_activity, lead_roles, lead_rows
from leadscore.features.values import lead_keys, to_epoch_ms
from leadscore.spec import ActivityColumns, DatasetSpec, read_columns
from leadscore.spec.activity import definitions_by_log


def activity_of(
    events: pd.DataFrame,
    columns: ActivityColumns,
    tables: AccountTables,
    spec: DatasetSpec,
    *,
    alone: bool = False,
    until_ms: float | None = None,
) -> AccountActivity:
    """The leads' activity keyed by their account rows (as matched), with each lead's creation and
    roles. ``alone``: a lead without an account is its own account of one (after the real ones), so
    its own events are read (``scope: account``: the account, or the lead itself)."""
    acc = accounts_of(spec)
    assert spec.time
    keys = lead_keys(tables.accounts[acc.id])
    index = pd.Index(keys.to_numpy(dtype=object))
    matched = tables.matches.frame["account_id"].to_numpy(dtype=object)
    missing = pd.isna(matched)
    lead_account = np.where(missing, -1, index.get_indexer(np.where(missing, "", matched)))
    n_accounts = len(index)
    if alone:
        own = lead_account < 0
        lead_account[own] = n_accounts + np.arange(int(own.sum()))
        n_accounts += int(own.sum())
    assert spec.id
    read = [
        columns.type,
        *([columns.log] if columns.log else []),
        *read_columns(spec.definitions),
        *read_columns(acc.engagement),
    ]
    return account_activity(
        events,
        columns,
        tables.leads[spec.id],
        lead_account.astype(np.int64),
        to_epoch_ms(tables.leads[spec.time]),
        lead_roles(tables.leads, acc.roles),
        n_accounts,
        keep_columns=read,
        until_ms=until_ms,
    )


def with_account_scope(
    frame: pd.DataFrame, folder: Path, events: pd.DataFrame, spec: DatasetSpec
) -> pd.DataFrame:
    """``frame`` (the leads, each at its scoring time) with every ``scope: account`` feature."""
    definitions = spec.declared_account
    if not definitions:
        return frame
    if spec.moments is not None:
        raise UserError("spec key 'moments': scope: account features are read at each lead's own time only")
    assert spec.id and spec.time and spec.activity is not None
    tables = read_account_tables(folder, spec)
    activity = activity_of(events, spec.activity, tables, spec, alone=True)
    anchor = lead_rows(tables.leads[spec.id], frame[spec.id])
    log_of = definitions_by_log(definitions, spec.logs)
    scope = AccountScope(activity, definitions, log_of if spec.activity.log is not None else None)
    values = scope.at(anchor.astype(np.int64), to_epoch_ms(frame[spec.time]))
    out = frame.drop(columns=[c for c in definitions if c in frame.columns]).reset_index(drop=True)
    return pd.concat([out, values], axis=1)
