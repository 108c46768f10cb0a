"""Buying cycles (``generate --accounts``): accounts enter and leave cycles; in a cycle several of
the account's people, in different roles, engage (pricing, demo forms, webinars, bottom-funnel
content); opportunities are created at a rate that depends on the account's fit and on the breadth
of its engaged buying group, as of monthly moments; after an opportunity, sales meetings follow
(dated after it: a leak trap for any feature read past its moment).

The truth is drawn as the lead generator's is: from what is observable at each moment, computed by
the project's own account engine over the shipped ``synthetic-accounts`` spec. Opportunities fall 3
to 27 days after a moment, so each monthly moment's 30-day label is its own draw and the next moment
is in the pipeline: ``true_p_opportunity`` is exactly the probability of that moment's label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.config import SHIPPED_CONFIGS
from leadscore.data.synthetic.events import TYPE_INDEX, TYPE_NAMES
from leadscore.data.synthetic.vocab import DAY_MS, ICP_INDUSTRIES, INDUSTRIES
from leadscore.features.account_scope import AccountScope
from leadscore.features.accounts import AccountRollups, account_activity, lead_roles
from leadscore.spec import Aggregation, DatasetSpec, load_spec
from leadscore.spec.activity import ACTIVITY

MEETING = len(TYPE_INDEX)  # the code of "meeting", an event type only the accounts world has
LABEL_DAYS = 30
COLLEAGUE_EFFECT = 0.75  # a lead's logit per colleague active in the buying cycle (at most 3)
_CYCLE_PLAN = (  # type, funnel stage (-1 none), mean count per engaged person and month
    ("web_visit", -1, 2.5),
    ("pricing_page_view", -1, 1.3),
    ("content_download", 2, 0.45),
    ("content_download", 1, 0.35),
    ("webinar_registration", -1, 0.3),
)


def accounts_spec() -> DatasetSpec:
    return load_spec(str(SHIPPED_CONFIGS / "datasets" / "synthetic-accounts.yaml"))


@dataclass(frozen=True)
class World:
    """The accounts' side of the world: what the generator needs of its leads and accounts."""

    lead_account: np.ndarray  # each lead's account (index)
    created: np.ndarray  # each lead's creation (epoch ms)
    seniority: np.ndarray
    department: np.ndarray
    industry: np.ndarray  # per account (codes)
    employees: np.ndarray
    tech: np.ndarray
    start: np.datetime64  # the first month
    months: int


def account_fit(world: World) -> np.ndarray:
    """How well each account fits: ICP industry, a mid-size or large firm, a CRM in place."""
    icp = np.isin(np.array(INDUSTRIES)[world.industry], ICP_INDUSTRIES)
    sized = (world.employees >= 50) & (world.employees <= 20_000)
    return 0.8 * icp + 0.6 * sized + 0.4 * (world.tech != 5) - 0.6


def draw_cycles(rng: np.random.Generator, world: World) -> dict[str, np.ndarray]:
    """Month by month, which accounts are in a buying cycle, and the events of their engaged people
    (``lead``, ``ts``, ``type``, ``stage``, ``title``, as ``draw_events`` gives them)."""
    n_accounts = len(world.industry)
    fit = account_fit(world)
    enter = 1.0 / (1.0 + np.exp(-(-2.3 + 0.9 * fit)))
    # a decision maker, a technical buyer, finance, anyone else; students hardly ever
    role_p = np.select(
        [
            world.seniority == 5,
            world.seniority <= 2,
            np.isin(world.department, (2, 6)),
            world.department == 4,
        ],
        [0.03, 0.6, 0.55, 0.5],
        0.3,
    )
    in_cycle = np.zeros(n_accounts, dtype=bool)
    parts: list[dict[str, np.ndarray]] = []
    month_starts = np.arange(world.start, world.start + world.months + 1, dtype="datetime64[M]")
    edges = month_starts.astype("datetime64[ms]").astype(np.int64)
    for k in range(world.months):
        in_cycle = np.where(in_cycle, rng.random(n_accounts) < 0.55, rng.random(n_accounts) < enter)
        heat = np.exp(rng.normal(0.0, 0.4, n_accounts))
        lo, hi = edges[k], edges[k + 1]
        alive = in_cycle[world.lead_account] & (world.created < hi)
        engaged = alive & (rng.random(len(alive)) < np.clip(role_p * heat[world.lead_account], 0, 0.95))
        who = np.flatnonzero(engaged)
        parts.append(_month_events(rng, who, world, np.maximum(world.created[who], lo), hi))
    return {key: np.concatenate([p[key] for p in parts]) for key in ("lead", "ts", "type", "stage", "title")}


def _month_events(
    rng: np.random.Generator, who: np.ndarray, world: World, start: np.ndarray, end: int
) -> dict[str, np.ndarray]:
    """One month's events of the engaged people ``who`` (each from ``start`` to the month's end)."""
    leads, types, stages = [], [], []
    for etype, funnel, mean in _CYCLE_PLAN:
        counts = rng.poisson(mean, len(who))
        leads.append(np.repeat(who, counts))
        types.append(np.full(int(counts.sum()), TYPE_INDEX[etype], dtype=np.int8))
        stages.append(np.full(int(counts.sum()), funnel, dtype=np.int8))
    deciders = world.seniority[who] <= 2
    demo = rng.random(len(who)) < np.where(deciders, 0.18, 0.05)
    leads.append(who[demo])
    types.append(np.full(int(demo.sum()), TYPE_INDEX["demo_request"], dtype=np.int8))
    stages.append(np.full(int(demo.sum()), -1, dtype=np.int8))
    lead = np.concatenate(leads)
    begin = start[np.searchsorted(who, lead)]  # ``who`` is sorted: each event's person's start
    ts = begin + (rng.random(len(lead)) * (end - begin)).astype(np.int64)
    stage = np.concatenate(stages)
    title = np.where(stage >= 0, rng.integers(0, 3, len(lead)), -1).astype(np.int8)
    return {"lead": lead, "ts": ts, "type": np.concatenate(types), "stage": stage, "title": title}


def _drawn_activity(events: dict[str, np.ndarray]) -> pd.DataFrame:
    """Drawn events (``lead`` a person's row, ``ts``, ``type`` and ``stage`` codes) as the account
    engines read an activity table."""
    return pd.DataFrame(
        {
            ACTIVITY.id: events["lead"],
            ACTIVITY.time: events["ts"].astype("datetime64[ms]"),
            ACTIVITY.type: pd.Categorical.from_codes(events["type"], categories=list(TYPE_NAMES)),
            "funnel_stage": pd.Categorical.from_codes(events["stage"], categories=["top", "mid", "bottom"]),
        }
    )


def truth_features(events: dict[str, np.ndarray], world: World, moments: np.ndarray) -> list[pd.DataFrame]:
    """The shipped account definitions over the people's marketing events (not sales meetings) at
    each moment, by the project's own account engine (one frame per moment, a row per account)."""
    from leadscore.data.synthetic.vocab import DEPARTMENTS, SENIORITIES

    spec = accounts_spec()
    assert spec.accounts is not None
    people = pd.DataFrame(
        {
            "seniority": np.array(SENIORITIES, dtype=object)[world.seniority],
            "department": np.array(DEPARTMENTS, dtype=object)[world.department],
        }
    )
    activity = account_activity(
        _drawn_activity(events),
        ACTIVITY,
        pd.Series(np.arange(len(world.lead_account))),  # the events name their person by row
        world.lead_account.astype(np.int64),
        world.created,
        lead_roles(people, spec.accounts.roles),
        len(world.industry),
    )
    engine = AccountRollups(activity, spec.accounts.engagement)
    return [engine.at(int(m)) for m in moments]


def true_logit(fit: np.ndarray, f: pd.DataFrame) -> np.ndarray:
    """P(opportunity within 30 days) on the logit scale, from what is observable at the moment: fit,
    the breadth of the engaged buying group (people, roles, a decision maker, finance), pricing
    interest and demo forms, with saturation."""
    contacts = f["contacts_30d"].to_numpy(float)
    return (
        -4.3
        + 0.7 * fit
        + 0.9 * np.log1p(contacts)
        + 0.45 * f["roles_30d"].to_numpy(float)
        + 0.5 * (f["deciders_30d"].to_numpy(float) > 0)
        + 0.35 * (f["finance_30d"].to_numpy(float) > 0)
        + 0.4 * np.log1p(f["pricing_contacts_30d"].to_numpy(float))
        + 0.8 * (f["demo_forms_60d"].to_numpy(float) > 0)
    )


@dataclass(frozen=True)
class Opportunities:
    """The opportunities drawn (account, creation time) and every drawn moment's truth."""

    account: np.ndarray
    created: np.ndarray
    moment_account: np.ndarray
    moment: np.ndarray
    true_p: np.ndarray


def draw_opportunities(
    rng: np.random.Generator, world: World, events: dict[str, np.ndarray]
) -> Opportunities:
    """At each month's first day (from the second month), each account not already in the pipeline
    gets an opportunity 3 to 27 days later with its true probability."""
    months = np.arange(world.start + 1, world.start + world.months + 1, dtype="datetime64[M]")
    moments = months.astype("datetime64[ms]").astype(np.int64)
    features = truth_features(events, world, moments)
    fit = account_fit(world)
    n = len(world.industry)
    last = np.full(n, np.iinfo(np.int64).min // 2)
    out_a, out_t, m_a, m_t, m_p = [], [], [], [], []
    for moment, f in zip(moments, features, strict=True):
        open_ = last <= moment - LABEL_DAYS * DAY_MS  # not in the pipeline
        p = 1.0 / (1.0 + np.exp(-true_logit(fit, f)))
        hit = open_ & (rng.random(n) < p)
        when = moment + (rng.uniform(3, 27, n) * DAY_MS).astype(np.int64)
        last = np.where(hit, when, last)
        rows = np.flatnonzero(open_)
        m_a.append(rows)
        m_t.append(np.full(len(rows), moment, dtype=np.int64))
        m_p.append(p[rows])
        out_a.append(np.flatnonzero(hit))
        out_t.append(when[hit])
    return Opportunities(
        np.concatenate(out_a),
        np.concatenate(out_t),
        np.concatenate(m_a),
        np.concatenate(m_t),
        np.concatenate(m_p),
    )


def draw_meetings(
    rng: np.random.Generator, world: World, opps: Opportunities, scored: np.ndarray
) -> dict[str, np.ndarray]:
    """One to three sales meetings after each opportunity, with people of the account already
    scored by then (so no lead's own features, as of its scoring time, read one)."""
    by_account = np.argsort(world.lead_account, kind="stable")
    starts = np.searchsorted(world.lead_account[by_account], np.arange(len(world.industry) + 1))
    count = rng.integers(1, 4, len(opps.account))
    account = np.repeat(opps.account, count)
    after = np.repeat(opps.created, count) + (rng.uniform(1, 20, int(count.sum())) * DAY_MS).astype(np.int64)
    size = starts[account + 1] - starts[account]
    pick = (rng.random(len(account)) * np.maximum(size, 1)).astype(np.int64)
    lead = by_account[np.minimum(starts[account] + pick, len(by_account) - 1)]
    keep = (size > 0) & (scored[lead] <= np.repeat(opps.created, count))
    n = int(keep.sum())
    return {
        "lead": lead[keep],
        "ts": after[keep],
        "type": np.full(n, MEETING, dtype=np.int8),
        "stage": np.full(n, -1, dtype=np.int8),
        "title": np.full(n, -1, dtype=np.int8),
    }


def colleagues_engaged(world: World, cycle: dict[str, np.ndarray], scored: np.ndarray) -> np.ndarray:
    """How many of each lead's colleagues (its account's other people) had buying-cycle activity in
    the 30 days up to its scoring time: the account's people active, by the project's own
    ``scope: account`` engine, less the lead itself."""
    n = len(world.lead_account)
    frame = _drawn_activity(cycle)
    keys = pd.Series(np.arange(n))
    people = Aggregation(contacts="any", days=LABEL_DAYS, scope="account")
    anchors = np.arange(n, dtype=np.int64)
    counted = []
    for groups in (world.lead_account.astype(np.int64), anchors):  # the account's people, then the lead alone
        activity = account_activity(frame, ACTIVITY, keys, groups, world.created, {}, int(groups.max()) + 1)
        counted.append(AccountScope(activity, {"people": people}).at(anchors, scored)["people"].to_numpy())
    return counted[0] - counted[1]
