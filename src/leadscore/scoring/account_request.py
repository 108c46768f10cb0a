"""One account through the API (``POST /v1/accounts/score``): its fields and its leads, each with
its fields and recent ``events``, scored as of a moment by the same engine batch scoring uses (the
account's leads are its own: no matching), with its buying group.

The body: ``{"account": {<id column>: ..., <fit fields>}, "leads": [{<id column>: ..., <time
column>: ..., <fields>, "events": [{"type": ..., "time": ..., "log": ..., <attributes>}]}],
"as_of": "2025-06-01T00:00:00Z"}`` (``as_of`` default now).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.account_scope import activity_of
from leadscore.data.account_table import ACCOUNT_ID, MOMENT, MOMENT_ID
from leadscore.data.accounts import AccountTables
from leadscore.data.matching import Matches
from leadscore.features import parse_dates
from leadscore.features.account_scope import AccountScope
from leadscore.features.accounts import AccountActivity, AccountRollups, lead_rows
from leadscore.features.rollups import request_events
from leadscore.features.values import lead_key, moment_ms
from leadscore.scoring.accounts import buying_group
from leadscore.scoring.batch import score_output
from leadscore.scoring.bundle import ModelBundle
from leadscore.spec import AccountsSpec, ActivityColumns, DatasetSpec, read_columns
from leadscore.spec.activity import ACTIVITY, definitions_by_log

ACCOUNT_KEY = "account"  # a lead sent to /v1/score with its account: the body /v1/accounts/score takes
SELF = "\x00self"  # the account of one of a lead sent without its account


class AccountRequestError(ValueError):
    """A request the account cannot be scored from; ``field`` names where (a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class AccountBody:
    """An account body as checked: the account's fields, its leads (each with ``events``), the moment."""

    account: Mapping[str, Any]
    leads: list[Mapping[str, Any]]
    moment: int  # epoch ms


def read_account_body(spec: DatasetSpec, body: Any, where: str = "") -> AccountBody:
    """``body`` checked (a 422 naming the field, prefixed by ``where``, otherwise)."""
    acc = spec.accounts
    assert acc is not None
    try:
        if not isinstance(body, Mapping):
            raise AccountRequestError("body", "must be a JSON object with 'account' and 'leads'")
        account = body.get("account")
        if not isinstance(account, Mapping) or lead_key(account.get(acc.id)) == "":
            raise AccountRequestError(f"account.{acc.id}", "the account and its id are required")
        leads = body.get("leads", [])
        if not isinstance(leads, list) or not all(isinstance(x, Mapping) for x in leads):
            raise AccountRequestError("leads", "must be a list of lead objects")
        _check_values(account, "account")
        for i, lead in enumerate(leads):
            _check_lead(lead, f"leads[{i}]")
        return AccountBody(account, leads, _moment(body.get("as_of")))
    except AccountRequestError as exc:
        if not where:
            raise
        raise AccountRequestError(f"{where}.{exc.field}", str(exc).split(": ", 1)[1]) from None


def _check_lead(lead: Mapping[str, Any], where: str) -> None:
    _check_values({k: v for k, v in lead.items() if k != "events"}, where)
    events = lead.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, Mapping) for e in events):
        raise AccountRequestError(f"{where}.events", "must be a list of event objects")
    for j, event in enumerate(events):
        _check_values(event, f"{where}.events[{j}]")


def _activity(spec: DatasetSpec, body: AccountBody) -> tuple[AccountTables, AccountActivity, bool]:
    """The account's tables and its leads' activity for the engine (and whether rows name a log)."""
    acc = spec.accounts
    assert acc is not None and spec.id
    tables = _tables(spec, body.account, body.leads)
    columns = ACTIVITY if len(spec.logs) > 1 else ActivityColumns(ACTIVITY.id, ACTIVITY.time, ACTIVITY.type)
    read = read_columns({**spec.definitions, **acc.engagement})
    sent = ((lead.get(spec.id), lead.get("events") or []) for lead in body.leads)
    events = request_events(sent, columns, next(iter(spec.logs), "events"), read)
    return tables, activity_of(events, columns, tables, spec), columns.log is not None


def account_answer(bundle: ModelBundle, body: Any, explain: int = 3) -> dict[str, Any]:
    """The answer for one account: P(opportunity), qualified, grade, reasons, buying group."""
    spec = bundle.spec.account_of
    assert spec is not None and spec.accounts is not None and spec.id and spec.time
    acc = spec.accounts
    checked = body if isinstance(body, AccountBody) else read_account_body(spec, body)
    moment = checked.moment
    tables, activity, logged = _activity(spec, checked)
    log_of = definitions_by_log(acc.engagement, spec.logs) if logged else None
    frame = _one_row(checked, AccountRollups(activity, acc.engagement, log_of).at(moment), acc)
    scored = score_output(bundle, frame, explain, by_record=True)  # one row: as the service encodes a lead
    group = buying_group(activity, np.array([0]), spec, moment).iloc[0]
    return {
        "account_id": lead_key(checked.account.get(acc.id)),
        "scored_at": pd.Timestamp(moment, unit="ms").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "p_opportunity": float(scored["p_sql"].iloc[0]),
        "qualified": bool(scored["mql"].iloc[0]),
        "grade": str(scored["grade"].iloc[0]),
        "reasons": [
            str(scored[f"reason_{k + 1}"].iloc[0])
            for k in range(explain)
            if scored[f"reason_{k + 1}"].iloc[0]
        ],
        "contacts_engaged": int(group["contacts_engaged"]),
        "roles_engaged": [r for r in str(group["roles_engaged"]).split(", ") if r],
        "roles_missing": [r for r in str(group["roles_missing"]).split(", ") if r],
        "model_version": bundle.version,
    }


def _one_row(body: AccountBody, values: pd.DataFrame, acc: AccountsSpec) -> pd.DataFrame:
    """The account as the model reads it at the moment (the account table's columns for one account,
    without the table joins a folder needs): its id, the moment, its fit fields, its engagement."""
    key = lead_key(body.account.get(acc.id))
    when = pd.Timestamp(body.moment, unit="ms")
    row = {MOMENT_ID: f"{key}@{when.strftime('%Y-%m-%d')}", ACCOUNT_ID: key, MOMENT: when}
    row |= {c: body.account.get(c) for c in acc.fit if c not in row}
    row |= {name: value for name, value in values.iloc[0].items()}
    return pd.DataFrame([row])


def lead_account_answer(bundle: ModelBundle, lead: Mapping[str, Any], explain: int = 3) -> dict[str, Any]:
    """The account's answer for a lead sent to ``/v1/score`` with its ``account`` (the lead among
    the account's leads)."""
    spec = bundle.spec.account_of
    assert spec is not None and spec.id
    body = read_account_body(spec, lead.get(ACCOUNT_KEY), ACCOUNT_KEY)
    return account_answer(bundle, with_lead(body, lead, spec.id), explain)


def with_lead(body: AccountBody, lead: Mapping[str, Any], id_field: str) -> AccountBody:
    """The account with ``lead`` among its leads (in place of a lead sent with the same id)."""
    own = _own(lead, id_field)
    others = [x for x in body.leads if lead_key(x.get(id_field)) != own[id_field]]
    return AccountBody(body.account, [own, *others], body.moment)


def _own(lead: Mapping[str, Any], id_field: str) -> dict[str, Any]:
    """The lead as one of its account's leads (a lead sent without an id stands in as ``SELF``)."""
    return {
        **{k: v for k, v in lead.items() if k != ACCOUNT_KEY},
        id_field: lead_key(lead.get(id_field)) or SELF,
    }


def scope_values(spec: DatasetSpec, body: AccountBody, scored_at_ms: float) -> dict[str, Any]:
    """The ``scope: account`` features of the body's first lead (``with_lead``, ``alone``) over the
    account's leads, itself included, as of its own scoring time: the engine batch scoring uses, on
    the leads and events sent."""
    assert spec.id
    definitions = spec.declared_account
    tables, activity, logged = _activity(spec, body)
    ids = pd.Series([lead_key(v) for v in tables.leads[spec.id]], dtype=object)
    anchor = lead_rows(ids, ids.iloc[:1])
    scope = AccountScope(
        activity, definitions, definitions_by_log(definitions, spec.logs) if logged else None
    )
    values = scope.at(anchor.astype(np.int64), np.array([int(scored_at_ms)], dtype=np.int64)).iloc[0]
    return {
        name: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for name, v in values.items()
    }


def alone(spec: DatasetSpec, lead: Mapping[str, Any]) -> AccountBody:
    """A lead sent without an account, as its own account of one (as training reads such a lead)."""
    assert spec.accounts is not None and spec.id
    return AccountBody({spec.accounts.id: SELF}, [_own(lead, spec.id)], 0)


PLAIN = (str, int, float, bool)


def _check_values(fields: Mapping[str, Any], where: str) -> None:
    """Every value a field holds is text, a number, a boolean or null (a 422 naming it otherwise)."""
    for key, value in fields.items():
        if value is not None and not isinstance(value, PLAIN):
            raise AccountRequestError(f"{where}.{key}", "must be text, a number, true/false or null")


def _moment(value: Any) -> int:
    if value is None:
        return int(time.time() * 1000)
    try:
        return int(moment_ms(str(value)))
    except ValueError:
        raise AccountRequestError("as_of", f"'{value}' is not a date or an ISO timestamp") from None


def _tables(spec: DatasetSpec, account: Mapping[str, Any], leads: list[Mapping[str, Any]]) -> AccountTables:
    """The account's one-row table and its leads' table, every lead matched to it by id."""
    acc = spec.accounts
    assert acc is not None and spec.id and spec.time
    # only what the engine reads of a lead (its id, time and the columns its roles look at)
    wanted = list(dict.fromkeys([spec.id, spec.time, *(c for role in acc.roles.values() for c in role)]))
    for i, lead in enumerate(leads):
        if lead_key(lead.get(spec.id)) == "":
            raise AccountRequestError(f"leads[{i}].{spec.id}", "each lead needs its id")
    frame = pd.DataFrame({c: [lead.get(c) for lead in leads] for c in wanted}, columns=wanted, dtype=object)
    frame[spec.time] = pd.Series(parse_dates(frame[spec.time]), index=frame.index)
    accounts = pd.DataFrame({c: [account.get(c)] for c in dict.fromkeys([acc.id, *acc.fit])}, dtype=object)
    ids = [lead_key(v) for v in frame[spec.id]]
    matched = pd.DataFrame(
        {"lead_id": ids, "account_id": [lead_key(account.get(acc.id))] * len(ids), "method": "id"}
    )
    return AccountTables(frame, accounts, None, Matches(matched, {"id": len(ids)}))
