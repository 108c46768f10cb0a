"""A realistic synthetic B2B lead generator: accounts, contacts, events, stages and ground truth.

The generator draws fit attributes and a latent buying intent per lead, turns intent into
timestamped engagement events, rolls the events up *as of the lead's scoring time* with the
package's own feature code, and only then draws the outcome from ``true_p_sql``: a function of
those observable roll-ups and fit fields with interactions, saturation and recency decay.
Stage history is written to agree with the label, which is re-derived from it. Events after the
scoring time exist (and are more frequent for leads that became SQL), so any point-in-time
mistake in feature code leaks and shows up in tests."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.config import SHIPPED_CONFIGS
from leadscore.data.synthetic.account_world import account_world, joined, part
from leadscore.data.synthetic.accounts import draw_accounts
from leadscore.data.synthetic.buying import COLLEAGUE_EFFECT, World, colleagues_engaged, draw_cycles
from leadscore.data.synthetic.events import arrow_events_table, draw_events, events_frame
from leadscore.data.synthetic.people import draw_emails, titles_table
from leadscore.data.synthetic.stages import draw_stage_history, feedback_from_stages, label_from_stages
from leadscore.data.synthetic.tables import (
    arrow_leads_table,
    dict_array,
    dict_array_nullable,
    inject_faults,
    ts_array,
)
from leadscore.data.synthetic.truth import true_logit
from leadscore.data.synthetic.vocab import (
    BASE_MONTHS,
    BASE_START,
    COUNTRIES,
    DAY_MS,
    DEPARTMENT_W,
    DEPARTMENTS,
    DISQUALIFY_REASONS,
    DRIFT_MONTHS,
    DRIFT_SOURCE,
    DRIFT_START,
    EXPORT_LAG_DAYS,
    INDUSTRIES,
    SENIORITIES,
    SENIORITY_W,
    SOURCE_W,
    SOURCES,
    TECH_STACKS,
    choice,
)
from leadscore.errors import not_a_date
from leadscore.features import rollups_for_spec
from leadscore.spec import DatasetSpec, load_spec


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate: size, seed, fault rate, and whether to draw the drifted later period."""

    leads: int = 10_000
    seed: int = 42
    fault_rate: float = 0.02
    drift: bool = False
    # APAC's buyers answer to other signals and its SMB team sells to small firms' managers: a
    # segment a model of its own serves better (off by default: the shipped figures assume one world).
    segment_effect: bool = False
    # The day the export is taken (a date): later events and stage changes are not in it, and the
    # flat label says what was known that day. None: the last lead's scoring time plus
    # ``export_lag_days``; "uncut": every lead's whole future (no open windows).
    observed_until: str | None = None
    export_lag_days: float = EXPORT_LAG_DAYS
    # Accounts in buying cycles, their opportunities and company names written several ways
    # (``data/synthetic/buying.py``; off by default so every figure of the lead world stays as it was).
    accounts: bool = False


def synthetic_spec() -> DatasetSpec:
    """The shipped spec of the generator's data: its engagement roll-ups are declared there, so the
    generator's leads table carries what training computes from its activity log."""
    return load_spec(str(SHIPPED_CONFIGS / "datasets" / "synthetic.yaml"))


@dataclass(frozen=True)
class Leads:
    """Who the leads are: their accounts, fit attributes (as codes) and times (epoch ms)."""

    n: int
    accounts: dict[str, np.ndarray]  # per account (``draw_accounts``)
    account: np.ndarray  # each lead's account (index)
    account_offset: int  # account ids of the drifted period do not collide with the base period's
    seniority: np.ndarray
    department: np.ndarray
    source: np.ndarray
    freemail: np.ndarray
    created: np.ndarray
    scored: np.ndarray
    lead_ids: np.ndarray
    fit: dict[str, np.ndarray]  # the attributes the truth reads (codes)


@dataclass(frozen=True)
class Engagement:
    """What a lead did before its scoring time, and the latent intent behind it."""

    fitness: np.ndarray
    intent: np.ndarray
    before: dict[str, np.ndarray]  # events up to the scoring time (``draw_events``)
    rollups: pd.DataFrame  # the spec's declared roll-ups as of the scoring time


@dataclass(frozen=True)
class Outcome:
    """What happened after the scoring time: the truth, the label, the later events and stages."""

    true_p: np.ndarray
    label: np.ndarray  # SQL within 90 days, whenever it happened (the truth)
    sql_at: np.ndarray  # when it happened (epoch ms; NaN: not within 90 days)
    after: dict[str, np.ndarray]
    stages: dict[str, Any]  # ``draw_stage_history``
    call: np.ndarray  # call_duration_sec: filled in after sales contact (the leak)


def generate(cfg: GeneratorConfig) -> dict[str, pa.Table]:
    """Draw the tables (leads, events, stage_history, accounts, feedback) for one configuration."""
    if cfg.leads < 1:
        raise ValueError("leads must be at least 1")
    if not 0.0 <= cfg.fault_rate <= 0.5:
        raise ValueError("fault rate must be between 0 and 0.5")
    rng = np.random.default_rng([cfg.seed, int(cfg.drift)])
    leads = _draw_leads(rng, cfg)
    # the accounts' own draws come from a stream of their own: the lead world's draws are unchanged
    side = np.random.default_rng([cfg.seed, int(cfg.drift), 31]) if cfg.accounts else None
    cycles = draw_cycles(side, _world(leads)) if side is not None else None
    engagement = _draw_engagement(rng, cfg, leads, part(cycles, leads.scored, before=True))
    outcome = _draw_outcome(rng, cfg, leads, engagement, cycles)
    cut = export_cut(cfg, leads.scored)
    exported = np.ones(leads.n, dtype=bool) if cut is None else leads.scored <= cut  # later ones: not yet
    columns = _lead_columns(rng, leads, engagement, outcome, cut)
    accounts = None
    if side is not None:
        every = joined(engagement.before, outcome.after)
        accounts = account_world(
            side, _world(leads), every, leads.scored, columns, leads.accounts, _account_ids(leads), cut
        )
        columns = accounts.columns
        outcome = replace(outcome, after=joined(outcome.after, accounts.meetings))
    columns = inject_faults(rng, {k: v[exported] for k, v in columns.items()}, cfg.fault_rate)
    tables = _tables(leads, engagement, outcome, columns, cut, exported)
    if accounts is None:
        return tables
    named = tables["accounts"]
    for name, values in accounts.account_columns.items():
        at = named.schema.get_field_index(name)
        named = named.set_column(at, name, values) if at >= 0 else named.append_column(name, values)
    return {**tables, "accounts": named, **accounts.tables}


def _world(leads: Leads) -> World:
    """What the buying cycles read of the lead world."""
    acc = leads.accounts
    start = leads.created.min().astype("datetime64[ms]").astype("datetime64[M]")
    end = leads.scored.max().astype("datetime64[ms]").astype("datetime64[M]")
    return World(
        lead_account=leads.account,
        created=leads.created,
        seniority=leads.seniority,
        department=leads.department,
        industry=acc["industry"],
        employees=acc["employees"],
        tech=acc["tech"],
        start=start,
        months=int((end - start).astype(int)) + 4,  # past the last scoring, as far as labels reach
    )


def _account_ids(leads: Leads) -> np.ndarray:
    return np.arange(len(leads.accounts["industry"]), dtype=np.int64) + 1 + leads.account_offset


def export_cut(cfg: GeneratorConfig, scored: np.ndarray) -> float | None:
    """The export day as epoch ms (the end of that day), or None for an uncut export."""
    if cfg.observed_until is not None and cfg.observed_until.strip().casefold() == "uncut":
        return None
    if cfg.observed_until is None:
        return float(scored.max() + cfg.export_lag_days * DAY_MS)
    try:
        day = np.datetime64(cfg.observed_until.strip()[:10], "D")
    except ValueError:
        raise not_a_date("observed_until", cfg.observed_until) from None
    return float((day + np.timedelta64(1, "D")).astype("datetime64[ms]").astype(np.int64) - 1)


def _draw_leads(rng: np.random.Generator, cfg: GeneratorConfig) -> Leads:
    """Accounts, then each lead's account, role, source and times."""
    n = cfg.leads
    n_accounts = max(1, n // 3)
    acc = draw_accounts(rng, n_accounts, cfg.drift)
    account = rng.integers(0, n_accounts, n)
    seniority = choice(rng, n, SENIORITY_W)
    department = choice(rng, n, DEPARTMENT_W)
    source_w = SOURCE_W + (0.0,) if not cfg.drift else tuple(w * 0.82 for w in SOURCE_W) + (0.18,)
    source = choice(rng, n, source_w)
    freemail = rng.random(n) < np.where(seniority == 5, 0.8, 0.18)
    start, months = (DRIFT_START, DRIFT_MONTHS) if cfg.drift else (BASE_START, BASE_MONTHS)
    created = (
        start.astype(np.int64)
        + np.sort(rng.integers(0, months * 30 * DAY_MS, n))
        + rng.integers(0, DAY_MS // 4, n)
    )
    scored = created + (rng.uniform(2, 21, n) * DAY_MS).astype(np.int64)
    fit = {
        "seniority": seniority,
        "industry": acc["industry"][account],
        "employees": acc["employees"][account],
        "country": acc["country"][account],
        "tech": acc["tech"][account],
        "freemail": freemail.astype(np.int8),
        "source": source,
    }
    return Leads(
        n=n,
        accounts=acc,
        account=account,
        account_offset=1_000_000 if cfg.drift else 0,
        seniority=seniority,
        department=department,
        source=source,
        freemail=freemail,
        created=created,
        scored=scored,
        lead_ids=np.arange(n, dtype=np.int64) + (10_000_000 if cfg.drift else 1),
        fit=fit,
    )


def _draw_engagement(
    rng: np.random.Generator, cfg: GeneratorConfig, leads: Leads, cycle: dict[str, np.ndarray] | None
) -> Engagement:
    """A latent intent per lead, the events it leads to before scoring (with its buying cycles'
    before then, where accounts are drawn), and their roll-ups."""
    n, source = leads.n, leads.source
    fitness = np.array([0.6, 0.5, 0.4, 0.2, 0.0, -0.6])[leads.seniority] + 0.3 * np.isin(
        leads.fit["industry"], [0, 1, 2, 3]
    )
    intent = rng.normal(0.0, 1.0, n) + 0.4 * fitness + np.where(source == 4, 0.4, 0.0)
    if cfg.drift:
        intent = intent - np.where(source == len(SOURCES), 0.6, 0.0)
    skew = np.exp(rng.normal(0.2 + 0.25 * np.clip(intent, -2, 2), 0.5))
    before = draw_events(
        rng, intent, fitness, leads.created, leads.scored, skew, np.ones(n), post=False, drift=cfg.drift
    )
    if cycle is not None:
        before = joined(before, cycle)
    anchors = _anchors(leads)
    rollups = rollups_for_spec(events_frame(before, leads.lead_ids), anchors, synthetic_spec())
    return Engagement(fitness=fitness, intent=intent, before=before, rollups=rollups)


def _anchors(leads: Leads) -> pd.DataFrame:
    """Each lead's id and scoring time: what features and labels are computed as of."""
    return pd.DataFrame({"lead_id": leads.lead_ids, "scored_at": leads.scored.astype("datetime64[ms]")})


def _draw_outcome(
    rng: np.random.Generator,
    cfg: GeneratorConfig,
    leads: Leads,
    eng: Engagement,
    cycles: dict[str, np.ndarray] | None,
) -> Outcome:
    """The truth from what was observable, the outcome drawn from it, and what followed: later
    events, a status history that agrees with the outcome, and the sales call's duration. With
    accounts, colleagues active in the account's buying cycle raise a lead's chance too."""
    n = leads.n
    logit = true_logit(leads.fit, eng.rollups, cfg.segment_effect)
    if cycles is not None:
        logit = logit + COLLEAGUE_EFFECT * np.minimum(
            colleagues_engaged(_world(leads), cycles, leads.scored), 3
        )
    true_p = 1.0 / (1.0 + np.exp(-logit))
    positive = rng.random(n) < true_p
    after = draw_events(
        rng,
        eng.intent + 1.2 * positive,
        eng.fitness,
        leads.scored + 1,
        leads.scored + 75 * DAY_MS,
        np.ones(n),
        1.0 + positive * 1.5,
        post=True,
        drift=cfg.drift,
    )
    later = part(cycles, leads.scored, before=False)
    if later is not None:
        after = joined(after, later)
    points_hot = eng.rollups["pricing_page_views_total"].to_numpy() > 0
    stages = draw_stage_history(rng, n, leads.created, leads.scored, positive, points_hot)
    stage_frame = pd.DataFrame(
        {
            "lead_id": leads.lead_ids[stages["lead"]],
            "stage": stages["stage_names"][stages["stage"]],
            "entered_at": stages["ts"].astype("datetime64[ms]"),
        }
    )
    label = label_from_stages(stage_frame, _anchors(leads))
    # The stage history is built from the draw; the label is what the stages say.
    assert np.array_equal(label.astype(bool), positive), "stage history disagrees with the draw"
    mql_code = list(stages["stage_names"]).index("MQL")
    reached_mql = np.isin(np.arange(n), stages["lead"][stages["stage"] == mql_code])
    contacted = label.astype(bool) | (reached_mql & (rng.random(n) < 0.6))
    call = np.where(
        label == 1,
        np.exp(rng.normal(6.4, 0.5, n)),
        np.where(contacted, np.exp(rng.normal(5.0, 0.8, n)), 0.0),
    ).round(0)
    return Outcome(
        true_p=true_p,
        label=label,
        sql_at=_sql_at(stages, leads.scored),
        after=after,
        stages=stages,
        call=call,
    )


def _sql_at(stages: dict[str, Any], scored: np.ndarray) -> np.ndarray:
    """Each lead's first SQL within 90 days of its scoring time (epoch ms; NaN: none)."""
    code = list(stages["stage_names"]).index("SQL")
    lead, ts = stages["lead"], stages["ts"]
    delta = ts - scored[lead]
    hit = (stages["stage"] == code) & (delta >= 0) & (delta <= 90 * DAY_MS)
    out = np.full(len(scored), np.inf)
    np.minimum.at(out, lead[hit], ts[hit].astype(np.float64))
    out[np.isinf(out)] = np.nan
    return out


def _lead_columns(
    rng: np.random.Generator, leads: Leads, eng: Engagement, outcome: Outcome, cut: float | None
) -> dict[str, np.ndarray]:
    """The leads table's columns as a CRM exports them on the export day (before its data faults):
    the label says what was known that day; ``true_days_to_sql`` keeps the truth for evaluation."""
    acc, account, fit = leads.accounts, leads.account, leads.fit
    countries = np.array([c[0] for c in COUNTRIES], dtype=object)[fit["country"]]
    regions = np.array([c[1] for c in COUNTRIES], dtype=object)[fit["country"]]
    titles = titles_table()[leads.seniority, leads.department]
    emails = draw_emails(rng, leads.n, acc["domain"][account], leads.freemail)
    columns = {
        "lead_id": leads.lead_ids,
        "account_id": account.astype(np.int64) + 1 + leads.account_offset,
        "email": emails,
        "job_title": titles,
        "seniority": np.array(SENIORITIES, dtype=object)[leads.seniority],
        "department": np.array(DEPARTMENTS, dtype=object)[leads.department],
        "company_name": acc["name"][account],
        "industry": np.array(INDUSTRIES, dtype=object)[fit["industry"]],
        "employee_count": fit["employees"].astype(np.int64),
        "country": countries,
        "region": regions,
        "tech_stack": np.array(TECH_STACKS, dtype=object)[fit["tech"]],
        "email_domain_type": np.where(leads.freemail, "free-mail", "corporate").astype(object),
        "lead_source": np.array((*SOURCES, DRIFT_SOURCE), dtype=object)[leads.source],
        "created_at": leads.created,
        "scored_at": leads.scored,
    }
    for col in eng.rollups.columns:
        columns[col] = eng.rollups[col].to_numpy()
    columns["call_duration_sec"] = outcome.call
    columns["true_p_sql"] = np.round(outcome.true_p, 6)
    known = (
        outcome.label.astype(bool) if cut is None else outcome.label.astype(bool) & (outcome.sql_at <= cut)
    )
    columns["sql_within_90d"] = known.astype(np.int8)
    columns["true_days_to_sql"] = np.round((outcome.sql_at - leads.scored) / DAY_MS, 3)
    return columns


def _tables(
    leads: Leads,
    eng: Engagement,
    outcome: Outcome,
    columns: dict[str, np.ndarray],
    cut: float | None,
    exported: np.ndarray,
) -> dict[str, pa.Table]:
    """The generated world as Arrow tables, each in the order a CRM export has it, as exported on
    the export day (nothing after ``cut``, no lead scored after it)."""
    lead_ids = leads.lead_ids
    stages = _until(outcome.stages, cut, exported, ("lead", "stage", "ts", "reason"))
    events = {
        k: np.concatenate([eng.before[k], outcome.after[k]]) for k in ("lead", "ts", "type", "stage", "title")
    }
    events = _until(events, cut, exported, ("lead", "ts", "type", "stage", "title"))
    stage_table = pa.table(
        {
            "lead_id": pa.array(lead_ids[stages["lead"]]),
            "stage": dict_array(stages["stage"], stages["stage_names"]),
            "entered_at": ts_array(stages["ts"]),
            "reason": dict_array_nullable(stages["reason"], DISQUALIFY_REASONS),
        }
    )
    order = np.lexsort((stages["ts"], lead_ids[stages["lead"]]))
    stage_table = stage_table.take(pa.array(order))
    return {
        "leads": arrow_leads_table(columns),
        "events": arrow_events_table(events, lead_ids),
        "stage_history": stage_table,
        "accounts": _accounts_table(leads),
        "feedback": feedback_from_stages(stage_table),
    }


def _until(
    table: dict[str, Any], cut: float | None, exported: np.ndarray, columns: tuple[str, ...]
) -> dict[str, Any]:
    """The rows of a drawn table (arrays by column, times in ``ts``, leads in ``lead``) of exported
    leads up to the export day."""
    if cut is None:
        return table
    keep = (table["ts"] <= cut) & exported[table["lead"]]
    return {**table, **{c: table[c][keep] for c in columns}}


def _accounts_table(leads: Leads) -> pa.Table:
    acc, n_accounts = leads.accounts, len(leads.accounts["industry"])
    return pa.table(
        {
            "account_id": pa.array(np.arange(n_accounts, dtype=np.int64) + 1 + leads.account_offset),
            "company_name": pa.array(acc["name"], type=pa.string()),
            "domain": pa.array(acc["domain"], type=pa.string()),
            "industry": dict_array(acc["industry"], INDUSTRIES),
            "employee_count": pa.array(acc["employees"]),
            "country": dict_array(acc["country"], tuple(c[0] for c in COUNTRIES)),
            "region": dict_array(acc["country"], tuple(c[1] for c in COUNTRIES)),
            "tech_stack": dict_array(acc["tech"], TECH_STACKS),
        }
    )
