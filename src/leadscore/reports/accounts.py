"""The account for its owner (``report account``) and the qualified accounts of the week
(``report queue --level account``): the account model's answer, its buying group person by person
(roles, recent activity, each one's own lead score where a lead model is given), the roles missing,
and the timeline of the account's activity."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.account_table import ACCOUNT_ID, ROW, account_table
from leadscore.data.folders import read_leads
from leadscore.errors import UserError
from leadscore.features.values import MS_PER_DAY, lead_key, lead_keys
from leadscore.reports import svg
from leadscore.reports.html import model_ids
from leadscore.scoring.accounts import ENGAGED_DAYS, account_scores
from leadscore.scoring.batch import score_output
from leadscore.scoring.bundle import ModelBundle

TIMELINE = 30  # the account's latest events shown


def _spec(bundle: ModelBundle) -> Any:
    if bundle.spec.account_of is None:
        raise UserError("--model: an account model is needed (models/<dataset>-accounts)")
    return bundle.spec.account_of


def account_queue_context(
    bundle: ModelBundle, data: str | Path, as_of_ms: float, limit: int = 200
) -> dict[str, Any]:
    """The accounts over the account cutoff as of the moment, best first, with their buying group."""
    _spec(bundle)
    scores = account_scores(bundle, data, as_of_ms, explain=3)
    qualified = scores.loc[scores["qualified"]].sort_values("p_opportunity", ascending=False, kind="stable")
    rows = [
        {
            "rank": i + 1,
            "account_id": r.account_id,
            "p": r.p_opportunity,
            "grade": r.grade,
            "contacts": int(r.contacts_engaged),
            "engaged": r.roles_engaged,
            "missing": r.roles_missing,
            "reasons": [x for x in (r.reason_1, r.reason_2, r.reason_3) if x],
        }
        for i, r in enumerate(qualified.head(limit).itertuples())
    ]
    return {
        "title": "Qualified accounts",
        "as_of": pd.Timestamp(int(as_of_ms), unit="ms").strftime("%Y-%m-%d %H:%M UTC"),
        "n_accounts": len(scores),
        "n_qualified": len(qualified),
        "expected": float(qualified["p_opportunity"].sum()),
        "rows": rows,
        "shown": len(rows),
        **model_ids(bundle),
        "score_label": "P(opportunity)",
    }


def account_context(
    bundle: ModelBundle,
    data: str | Path,
    account_id: str,
    as_of_ms: float,
    lead_bundle: ModelBundle | None = None,
) -> dict[str, Any]:
    """One account as its owner reads it."""
    spec = _spec(bundle)
    table = account_table(data, spec, as_of=as_of_ms, every_column=True)
    at = np.flatnonzero(table.frame[ACCOUNT_ID].to_numpy(dtype=object) == lead_key(account_id))
    if not len(at):
        raise UserError(f"--account-id: no account '{account_id}' with activity by then in {data}")
    table = replace(table, frame=table.frame.iloc[at[:1]].reset_index(drop=True))  # score it alone
    answer = account_scores(bundle, data, as_of_ms, explain=5, table=table).iloc[0]
    row = int(table.frame[ROW].iloc[0])
    events = np.flatnonzero((table.activity.account == row) & (table.activity.times <= as_of_ms))
    events = events[np.argsort(table.activity.times[events], kind="stable")]  # read for one moment: log order
    people = _people(table, spec, row, events, as_of_ms, data, lead_bundle)
    reasons = [str(answer[f"reason_{k}"]) for k in range(1, 6) if answer.get(f"reason_{k}")]
    return {
        "title": f"Account {account_id}",
        "account_id": account_id,
        "as_of": pd.Timestamp(int(as_of_ms), unit="ms").strftime("%Y-%m-%d %H:%M UTC"),
        "answer": answer.to_dict(),
        "gauge": svg.score_gauge(float(answer["p_opportunity"]), bundle.threshold),
        "reasons": reasons,
        "people": people,
        "missing": [r for r in str(answer["roles_missing"]).split(", ") if r],
        "timeline": _timeline(table, events),
        **model_ids(bundle),
        "score_label": "P(opportunity)",
        "has_lead_scores": lead_bundle is not None,
    }


def _people(
    table: Any,
    spec: Any,
    row: int,
    events: np.ndarray,
    as_of_ms: float,
    data: str | Path,
    lead_bundle: ModelBundle | None,
) -> list[dict[str, Any]]:
    """The account's people: roles, activity in the last 30 days, last activity, own lead score
    (``events``: the account's events up to the moment)."""
    act = table.activity
    mine = np.flatnonzero(act.lead_account == row)
    leads = table.tables.leads.iloc[mine]
    names = list(spec.accounts.roles)
    ids = lead_keys(leads[spec.id]).to_numpy(dtype=object)
    times, who = act.times[events], act.lead[events]
    recent = times >= as_of_ms - ENGAGED_DAYS * MS_PER_DAY
    own = _lead_scores(lead_bundle, data, spec, ids) if lead_bundle is not None else {}
    out = []
    for lead_row, lead_id in zip(mine, ids, strict=True):
        theirs = who == lead_row
        last = times[theirs]
        out.append(
            {
                "lead_id": lead_id,
                "roles": [r for r in names if act.roles[r][lead_row]],
                "recent": int((theirs & recent).sum()),
                "last": pd.Timestamp(int(last.max()), unit="ms").strftime("%Y-%m-%d") if len(last) else None,
                "p_sql": own.get(lead_id),
            }
        )
    return sorted(out, key=lambda p: (-p["recent"], str(p["lead_id"])))


def _lead_scores(lead_bundle: ModelBundle, data: str | Path, spec: Any, ids: np.ndarray) -> dict[str, float]:
    leads = read_leads(data, lead_bundle.spec)
    keys = lead_keys(leads[spec.id])
    chosen = leads.loc[keys.isin(set(ids)).to_numpy()].drop_duplicates(spec.id)
    if chosen.empty:
        return {}
    scored = score_output(lead_bundle, chosen)
    return dict(zip(lead_keys(chosen[spec.id]), scored["p_sql"], strict=True))


def _timeline(table: Any, events: np.ndarray) -> list[dict[str, Any]]:
    """The account's latest events up to the moment (``events``, oldest first), newest first."""
    act = table.activity
    hits = events[::-1][:TIMELINE]
    types = act.events[act.columns.type].to_numpy(dtype=object)
    lead_ids = table.tables.matches.frame["lead_id"].to_numpy(dtype=object)
    return [
        {
            "when": pd.Timestamp(int(act.times[i]), unit="ms").strftime("%Y-%m-%d %H:%M"),
            "lead_id": lead_ids[act.lead[i]],
            "what": str(types[i]),
        }
        for i in hits
    ]
