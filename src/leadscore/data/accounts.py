"""A data folder's accounts: the accounts table, the opportunities, and every lead matched to its
account (``data/matching.py``), each column a spec key names checked with one line naming the key.

Duplicate account ids and opportunities of unknown accounts are the data's fault: ``validate``
counts them as warnings; every other command stops on duplicate ids (a lead could not be told which
account it has) and leaves unknown accounts' opportunities out, counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from leadscore.data.activity import require_columns
from leadscore.data.lifecycle import with_scoring_time
from leadscore.data.matching import MatchColumns, Matches, free_mail_domains, match_leads
from leadscore.data.paths import leads_path
from leadscore.data.sources import find_table, read_some_columns, read_table
from leadscore.errors import UserError
from leadscore.features.values import lead_keys
from leadscore.spec import AccountsSpec, DatasetSpec


@dataclass
class AccountTables:
    """What a folder says of accounts: its leads, accounts, opportunities (None without a label
    from opportunities), each lead's match, and what was counted on the way."""

    leads: pd.DataFrame
    accounts: pd.DataFrame
    opportunities: pd.DataFrame | None
    matches: Matches
    sources: dict[str, str] = field(default_factory=dict)  # kind -> file name
    counts: dict[str, int] = field(default_factory=dict)  # duplicate ids, unknown opportunities


def accounts_of(spec: DatasetSpec) -> AccountsSpec:
    if spec.accounts is None:
        raise UserError(f"spec '{spec.name}' has no 'accounts' block (see docs/spec.md, Accounts)")
    return spec.accounts


def read_account_tables(
    folder: str | Path, spec: DatasetSpec, *, strict: bool = True, every_column: bool = False
) -> AccountTables:
    """The folder's leads, accounts and opportunities, checked, with every lead matched. ``strict``:
    duplicate account ids stop (``validate`` counts them instead). The leads keep the columns the
    accounts read (``lead_columns``), or ``every_column`` (a report scoring each person)."""
    acc = accounts_of(spec)
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: accounts need a data folder (the leads and accounts tables)")
    if not spec.id:
        raise UserError(f"spec '{spec.name}': key 'id' (the leads' id column) is needed to match accounts")
    leads_file = leads_path(folder, spec)
    wanted = None if every_column else lead_columns(spec)
    leads = with_scoring_time(
        read_table(leads_file) if wanted is None else read_some_columns(leads_file, wanted), spec
    )
    accounts, accounts_name = _table(folder, spec, "accounts")
    check_columns(spec, leads, leads_file.name, accounts, accounts_name)
    counts = {"duplicate_account_ids": _duplicates(accounts, acc.id)}
    if counts["duplicate_account_ids"] and strict:
        raise UserError(duplicate_ids_line(accounts, acc.id, accounts_name))
    matches = match_leads(leads, accounts, match_columns(spec, accounts))
    sources = {"leads": leads_file.name, "accounts": accounts_name}
    opportunities = None
    if acc.label is not None and acc.label.opportunities is not None:
        opportunities, sources["opportunities"] = _table(folder, spec, "opportunities")
        named = acc.label.opportunities
        require_columns(
            opportunities.columns,
            sources["opportunities"],
            "accounts.label.opportunities",
            named.model_dump(),
        )
        keys = lead_keys(opportunities[named.id])
        known = keys.isin(set(lead_keys(accounts[acc.id])))
        counts["unknown_opportunities"] = int((~known).sum())
        opportunities = opportunities.loc[known.to_numpy()].reset_index(drop=True)
    return AccountTables(leads, accounts, opportunities, matches, sources, counts)


def lead_columns(spec: DatasetSpec) -> list[str] | None:
    """What the accounts read of a lead: its id and time, the columns it is matched by, its roles',
    its email; None (every column) when a log keyed by email must find the leads' email column by
    its values."""
    acc = accounts_of(spec)
    if spec.email is None and any(log.email is not None for log in spec.logs.values()):
        return None
    named = [spec.id, spec.time, *spec.time_also, acc.lead_account, acc.match.email, acc.match.company]
    named += [spec.email]
    named += [c for role in acc.roles.values() for c in role]
    return [c for c in dict.fromkeys(named) if c]


def _table(folder: Path, spec: DatasetSpec, kind: str) -> tuple[pd.DataFrame, str]:
    stem = spec.table(kind)
    path = find_table(folder, stem)
    if path is None:
        raise UserError(f"{folder}: no '{stem}' table (.csv or .parquet) for spec key 'tables.{kind}'")
    return read_table(path), path.name


def check_columns(
    spec: DatasetSpec, leads: pd.DataFrame, leads_name: str, accounts: pd.DataFrame, accounts_name: str
) -> None:
    """Every column the ``accounts`` block names, in its table (one line naming the key)."""
    acc = accounts_of(spec)
    require_columns(accounts.columns, accounts_name, "accounts", {"id": acc.id})
    on_accounts = {"match.website": acc.match.website, "match.name": acc.match.name}
    require_columns(accounts.columns, accounts_name, "accounts", {k: v for k, v in on_accounts.items() if v})
    on_leads = {
        "lead_account": acc.lead_account,
        "match.email": acc.match.email,
        "match.company": acc.match.company,
    }
    require_columns(leads.columns, leads_name, "accounts", {k: v for k, v in on_leads.items() if v})
    for i, column in enumerate(acc.fit):
        require_columns(accounts.columns, accounts_name, "accounts", {f"fit[{i}]": column})
    for role, patterns in acc.roles.items():
        for column in patterns:
            require_columns(leads.columns, leads_name, "accounts", {f"roles.{role}": column})


def match_columns(spec: DatasetSpec, accounts: pd.DataFrame) -> MatchColumns:
    """What the matcher reads; the accounts' name column defaults to the leads' company column's
    name, else ``Name``, where the accounts table has it."""
    acc = accounts_of(spec)
    assert spec.id
    name = acc.match.name
    if name is None and acc.match.company is not None:
        name = next((c for c in (acc.match.company, "Name", "name") if c in accounts.columns), None)
    return MatchColumns(
        lead_id=spec.id,
        account_id=acc.id,
        lead_account=acc.lead_account,
        email=acc.match.email,
        company=acc.match.company,
        website=acc.match.website,
        name=name,
        free_mail=free_mail_domains(acc.match.free_mail),
    )


def duplicate_ids_line(accounts: pd.DataFrame, id_col: str, name: str) -> str | None:
    """The line that stops a command on repeated account ids (None when each id is once)."""
    repeated = _duplicates(accounts, id_col)
    if not repeated:
        return None
    return (
        f"{name}: {repeated:,} account ids appear twice in column '{id_col}' (spec key 'accounts.id'): "
        "a lead could not be told which account it has"
    )


def _duplicates(accounts: pd.DataFrame, id_col: str) -> int:
    keys = lead_keys(accounts[id_col])
    return int((keys.duplicated() & (keys != "")).sum())
