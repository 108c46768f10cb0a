"""The accounts' tables of ``generate --accounts``: the lead world's people joined to their
accounts' buying cycles, the opportunities, the truth per account and moment, and the company
names and addresses as the leads wrote them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from leadscore.data.synthetic.buying import World, draw_meetings, draw_opportunities
from leadscore.data.synthetic.tables import ts_array
from leadscore.data.synthetic.variants import (
    account_names,
    known_accounts,
    lead_companies,
    lead_emails,
    websites,
)

EVENT_KEYS = ("lead", "ts", "type", "stage", "title")


def part(
    events: dict[str, np.ndarray] | None, scored: np.ndarray, *, before: bool
) -> dict[str, np.ndarray] | None:
    """The events at or before each person's scoring time (``before``), or after it."""
    if events is None:
        return None
    keep = (events["ts"] <= scored[events["lead"]]) == before
    return {k: events[k][keep] for k in EVENT_KEYS}


def joined(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]).astype(a[k].dtype) for k in EVENT_KEYS}


@dataclass(frozen=True)
class AccountSide:
    """What the accounts add to the lead world."""

    columns: dict[str, np.ndarray]  # the leads' columns as written (company, email, account)
    meetings: dict[str, np.ndarray]  # sales meetings after each opportunity (events)
    account_columns: dict[str, pa.Array]  # the accounts table's name (with its legal form), website
    tables: dict[str, pa.Table]  # opportunities, account_moments


def account_world(
    rng: np.random.Generator,
    world: World,
    events: dict[str, np.ndarray],
    scored: np.ndarray,
    columns: dict[str, np.ndarray],
    accounts: dict[str, np.ndarray],
    account_ids: np.ndarray,
    cut: float | None,
) -> AccountSide:
    """The leads' columns as written with accounts, the sales meetings (events after each
    opportunity), and the ``accounts``, ``opportunities`` and ``account_moments`` tables."""
    opps = draw_opportunities(rng, world, events)
    meetings = draw_meetings(rng, world, opps, scored)
    base, named = account_names(rng, accounts["name"])
    lead = world.lead_account
    freemail = columns["email_domain_type"] == "free-mail"
    columns = {
        **columns,
        "company_name": lead_companies(rng, base[lead]),
        "email": lead_emails(rng, columns["email"], freemail, accounts["domain"]),
        "account_id": known_accounts(rng, columns["account_id"]),
        "true_account_id": columns["account_id"],
    }
    until = np.inf if cut is None else cut
    made = opps.created <= until
    order = np.lexsort((opps.account[made], opps.created[made]))
    opp_table = pa.table(
        {
            "opportunity_id": pa.array(np.arange(len(order), dtype=np.int64) + 1),
            "account_id": pa.array(account_ids[opps.account[made][order]]),
            "created_at": ts_array(opps.created[made][order]),
        }
    )
    seen = opps.moment <= until
    moment_table = pa.table(
        {
            "account_id": pa.array(account_ids[opps.moment_account[seen]]),
            "moment": ts_array(opps.moment[seen]),
            "true_p_opportunity": pa.array(np.round(opps.true_p[seen], 6)),
        }
    )
    account_columns = {
        "company_name": pa.array(named, type=pa.string()),
        "website": pa.array(websites(rng, accounts["domain"]), type=pa.string()),
    }
    tables = {"opportunities": opp_table, "account_moments": moment_table}
    return AccountSide(columns, meetings, account_columns, tables)
