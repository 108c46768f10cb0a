"""A realistic synthetic B2B lead generator: accounts, contacts, events, stages and ground truth.

The generator draws fit attributes and a latent buying intent per lead, turns intent into
timestamped engagement events, rolls the events up *as of the lead's scoring time* with the
package's own feature code, and only then draws the outcome from ``true_p_sql``: a function of
those observable roll-ups and fit fields with interactions, saturation and recency decay.
Stage history is written to agree with the label, which is re-derived from it. Events after the
scoring time exist (and are more frequent for leads that became SQL), so any point-in-time
mistake in feature code leaks and shows up in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.config import SHIPPED_CONFIGS, DatasetSpec, load_spec
from leadscore.data.sources import write_arrow
from leadscore.features import rollups_for_spec

INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Government",
    "Media",
    "Logistics",
    "Energy",
)
INDUSTRY_W = (0.18, 0.12, 0.11, 0.13, 0.10, 0.09, 0.06, 0.07, 0.08, 0.06)
ICP_INDUSTRIES = ("Software", "Financial Services", "Healthcare", "Manufacturing")
COUNTRIES = (
    ("United States", "North America", 0.30),
    ("Canada", "North America", 0.05),
    ("United Kingdom", "Europe", 0.10),
    ("Germany", "Europe", 0.08),
    ("France", "Europe", 0.06),
    ("Netherlands", "Europe", 0.04),
    ("Spain", "Europe", 0.03),
    ("India", "APAC", 0.12),
    ("Australia", "APAC", 0.05),
    ("Japan", "APAC", 0.04),
    ("Singapore", "APAC", 0.03),
    ("Brazil", "LATAM", 0.06),
    ("Mexico", "LATAM", 0.04),
)
COUNTRY_VARIANTS = {
    "United States": ("USA", "U.S.", "united states", "US"),
    "United Kingdom": ("UK", "Great Britain", "united kingdom"),
    "Germany": ("Deutschland", "germany"),
    "India": ("india", "IN"),
    "Netherlands": ("The Netherlands", "Holland"),
}
TECH_STACKS = ("Salesforce", "HubSpot", "Microsoft Dynamics", "Zoho", "Pipedrive", "None")
TECH_W = (0.28, 0.22, 0.12, 0.08, 0.07, 0.23)
SENIORITIES = ("C-level", "VP", "Director", "Manager", "Individual Contributor", "Student")
SENIORITY_W = (0.05, 0.08, 0.15, 0.27, 0.38, 0.07)
DEPARTMENTS = ("Marketing", "Sales", "IT", "Operations", "Finance", "HR", "Engineering")
DEPARTMENT_W = (0.24, 0.18, 0.16, 0.13, 0.10, 0.07, 0.12)
SOURCES = (
    "Organic Search",
    "Paid Search",
    "Paid Social",
    "Webinar",
    "Referral",
    "Event",
    "Content Syndication",
    "Outbound",
    "Direct",
)
SOURCE_W = (0.22, 0.16, 0.12, 0.10, 0.06, 0.07, 0.12, 0.08, 0.07)
DRIFT_SOURCE = "AI Assistant"
FREEMAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
DISQUALIFY_REASONS = ("not ICP", "duplicate", "bad data", "student/research", "competitor")
PLACEHOLDER_VALUES = ("Select", "N/A")
PLACEHOLDER_COLUMNS = ("job_title", "industry", "department", "tech_stack")
CONTENT = {
    "top": ("State of B2B Marketing Report", "Beginner's eBook", "Industry Trends Infographic"),
    "mid": ("Implementation Guide", "ROI Calculator", "Customer Case Study"),
    "bottom": ("Pricing Sheet", "Security Whitepaper", "Migration Checklist"),
}
_NAME_A = (
    "North",
    "Blue",
    "Bright",
    "Iron",
    "Silver",
    "Cedar",
    "Summit",
    "Harbor",
    "Quantum",
    "Nova",
    "Atlas",
    "Pioneer",
    "Vertex",
    "Apex",
    "Crystal",
    "Granite",
    "Maple",
    "Orbit",
    "Polar",
    "Sage",
)
_NAME_B = (
    "wind",
    "field",
    "stone",
    "bridge",
    "point",
    "works",
    "gate",
    "line",
    "path",
    "ridge",
    "labs",
    "soft",
    "logic",
    "data",
    "cloud",
    "scale",
    "forge",
    "grid",
    "mark",
    "wave",
)
_FIRST = ("alex", "sam", "maria", "li", "omar", "anna", "raj", "emma", "noah", "sofia", "yuki", "lucas")
_LAST = ("smith", "garcia", "chen", "patel", "muller", "rossi", "kim", "silva", "novak", "brown")

BASE_START = np.datetime64("2024-01-01T00:00:00", "ms")
BASE_MONTHS = 20
DRIFT_START = np.datetime64("2025-09-01T00:00:00", "ms")
DRIFT_MONTHS = 6
_DAY_MS = 86_400_000
# Chosen so that about 9% of leads reach SQL (real funnels: 5-15%).
INTERCEPT = -5.05


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


def _choice(rng: np.random.Generator, n: int, weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum()).astype(np.int16)


def _accounts(rng: np.random.Generator, n_accounts: int, drift: bool) -> dict[str, np.ndarray]:
    industry = _choice(rng, n_accounts, INDUSTRY_W)
    country = _choice(rng, n_accounts, tuple(c[2] for c in COUNTRIES))
    employees = np.round(np.exp(rng.normal(5.0, 1.7, n_accounts))).clip(1, 400_000).astype(np.int64)
    tech_w = TECH_W if not drift else (0.22, 0.30, 0.12, 0.08, 0.07, 0.21)
    tech = _choice(rng, n_accounts, tech_w)
    a = rng.integers(0, len(_NAME_A), n_accounts)
    b = rng.integers(0, len(_NAME_B), n_accounts)
    serial = np.arange(n_accounts)
    names = np.array(
        [f"{_NAME_A[i]}{_NAME_B[j]} {k}" for i, j, k in zip(a, b, serial, strict=True)], dtype=object
    )
    domains = np.array(
        [f"{_NAME_A[i].lower()}{_NAME_B[j]}{k}.com" for i, j, k in zip(a, b, serial, strict=True)],
        dtype=object,
    )
    return {
        "industry": industry,
        "country": country,
        "employees": employees,
        "tech": tech,
        "name": names,
        "domain": domains,
    }


def _titles() -> np.ndarray:
    table = np.empty((len(SENIORITIES), len(DEPARTMENTS)), dtype=object)
    for d, dept in enumerate(DEPARTMENTS):
        table[0, d] = {"Finance": "CFO", "IT": "CIO", "Engineering": "CTO", "Marketing": "CMO"}.get(
            dept, "CEO" if dept in {"Sales", "Operations"} else "COO"
        )
        table[1, d] = f"VP of {dept}"
        table[2, d] = f"Director of {dept}"
        table[3, d] = f"{dept} Manager"
        table[4, d] = {"Engineering": "Software Engineer", "IT": "Systems Administrator"}.get(
            dept, f"{dept} Specialist"
        )
        table[5, d] = "Student"
    return table


def _emails(rng: np.random.Generator, n: int, domains: np.ndarray, freemail: np.ndarray) -> np.ndarray:
    first = rng.integers(0, len(_FIRST), n)
    last = rng.integers(0, len(_LAST), n)
    free = rng.integers(0, len(FREEMAIL), n)
    return np.array(
        [
            f"{_FIRST[f]}.{_LAST[g]}{i}@{FREEMAIL[k] if fm else dom}"
            for i, (f, g, k, fm, dom) in enumerate(zip(first, last, free, freemail, domains, strict=True))
        ],
        dtype=object,
    )


def _true_logit(lead: dict[str, np.ndarray], eng: pd.DataFrame, segment_effect: bool = False) -> np.ndarray:
    """The generator's truth: follows the points model's directions, but is not additive."""
    sen = lead["seniority"]
    senior = sen <= 2
    seniority_effect = np.array([0.9, 0.85, 0.6, 0.3, 0.0, -1.6])[sen]
    log_emp = np.log10(np.maximum(lead["employees"], 1))
    size_effect = 0.75 * np.exp(-((log_emp - 3.0) ** 2) / 0.9) - 0.35
    icp = np.isin(lead["industry"], [INDUSTRIES.index(i) for i in ICP_INDUSTRIES])
    region = np.array([COUNTRIES[c][1] for c in range(len(COUNTRIES))], dtype=object)[lead["country"]]
    good_region = np.isin(region, ["North America", "Europe"])
    # The segment effect: APAC's SMB team sells to small firms' hands-on managers, not to large
    # firms' executives, and its buyers answer to other signals (below).
    apac = (region == "APAC") & segment_effect
    apac_size = 0.75 * np.exp(-((log_emp - 1.6) ** 2) / 0.6) - 0.35
    apac_seniority = np.array([-0.3, 0.2, 0.8, 0.7, 0.2, -1.6])[sen]
    crm = np.isin(lead["tech"], [0, 1])
    source_effect = np.array([0.1, 0.0, -0.25, 0.15, 0.55, 0.2, -0.45, -0.1, 0.05, 0.3])[lead["source"]]

    pricing = eng["pricing_page_views_total"].to_numpy()
    pricing_7 = eng["pricing_page_views_7d"].to_numpy()
    returns = eng["return_visits_7d"].to_numpy()
    mid = eng["downloads_mid"].to_numpy()
    bottom = eng["downloads_bottom"].to_numpy()
    top = eng["downloads_top"].to_numpy()
    attended = eng["webinars_attended"].to_numpy()
    registered = eng["webinars_registered"].to_numpy()
    clicks = eng["email_clicks_30d"].to_numpy()
    demo = eng["demo_requests"].to_numpy() > 0
    consult = eng["consultation_requests"].to_numpy() > 0
    idle = eng["days_since_last_activity"].to_numpy()
    idle = np.where(np.isnan(idle), 90.0, idle)

    engaged = (
        1.0 * (1 - np.exp(-pricing / 2.0))
        + 0.45 * (pricing_7 > 0) * senior
        + 0.55 * np.tanh(returns / 3.0)
        + 0.55 * (1 - np.exp(-mid))
        + 0.6 * (1 - np.exp(-bottom))
        + 0.08 * np.minimum(top, 3)
        + 0.55 * np.minimum(attended, 2) / 2
        + 0.1 * (registered > attended)
        + 0.18 * np.log1p(clicks)
        + 1.3 * demo
        + 0.6 * consult
    )
    fit = (
        np.where(apac, apac_seniority, seniority_effect)
        + np.where(apac, apac_size, size_effect)
        + 0.45 * icp
        + 0.3 * good_region
        + 0.25 * crm
        - 0.55 * lead["freemail"]
        + source_effect
    )
    # APAC's buyers answer to other signals. Webinars, consultations and email
    # replies carry them; pricing pages and demo requests come mostly from resellers pricing a deal
    # for someone else and count against the lead.
    apac_engaged = (
        -1.3 * (1 - np.exp(-pricing / 2.0))
        + 0.4 * np.tanh(returns / 3.0)
        + 0.5 * (1 - np.exp(-mid))
        + 0.5 * (1 - np.exp(-bottom))
        + 2.2 * np.minimum(attended, 2) / 2
        + 0.4 * (registered > attended)
        + 0.7 * np.log1p(clicks)
        - 1.3 * demo
        + 2.2 * consult
    )
    engaged = np.where(apac, apac_engaged, engaged)
    # Engagement matters more when the lead fits; activity decays with time since the last touch.
    interaction = 0.35 * np.clip(fit, -1, 1.5) * np.minimum(engaged, 2.0)
    recency = -1.0 * (1 - np.exp(-idle / 25.0))
    return INTERCEPT + fit + 1.05 * engaged + interaction + recency


_EVENT_PLAN = (
    # type, stage, base rate per lead before scoring, intent slope, post-scoring multiplier
    ("web_visit", "", 2.2, 0.55, 0.6),
    ("pricing_page_view", "", 0.35, 0.9, 0.8),
    ("webinar_registration", "", 0.25, 0.5, 0.3),
    ("webinar_attendance", "", 0.0, 0.0, 0.3),  # drawn from registrations
    ("content_download", "top", 0.45, 0.3, 0.3),
    ("content_download", "mid", 0.22, 0.7, 0.4),
    ("content_download", "bottom", 0.08, 1.0, 0.6),
    ("email_open", "", 2.5, 0.25, 1.0),
    ("email_click", "", 0.5, 0.5, 0.8),
    ("demo_request", "", 0.025, 1.3, 1.5),
    ("consultation_request", "", 0.03, 1.0, 1.0),
)
_TYPE_INDEX = {
    "web_visit": 0,
    "pricing_page_view": 1,
    "webinar_registration": 2,
    "webinar_attendance": 3,
    "content_download": 4,
    "email_open": 5,
    "email_click": 6,
    "demo_request": 7,
    "consultation_request": 8,
}
_TYPE_NAMES = tuple(sorted(_TYPE_INDEX, key=_TYPE_INDEX.__getitem__))


def _draw_events(
    rng: np.random.Generator,
    intent: np.ndarray,
    fitness: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    skew: np.ndarray,
    multiplier: np.ndarray,
    post: bool,
    drift: bool,
) -> dict[str, np.ndarray]:
    """Timestamped events for each lead in [start, end); ``skew`` > 1 crowds them near ``end``."""
    leads_out: list[np.ndarray] = []
    types_out: list[np.ndarray] = []
    stages_out: list[np.ndarray] = []
    titles_out: list[np.ndarray] = []
    span = (end - start).astype(np.float64)
    registrations: np.ndarray | None = None
    for etype, stage, base, slope, post_mult in _EVENT_PLAN:
        if etype == "webinar_attendance":
            assert registrations is not None
            show = 0.45 if not drift else 0.3
            counts = rng.binomial(registrations, show)
        else:
            rate = base * np.exp(slope * intent + 0.25 * fitness) * multiplier
            if post:
                rate = rate * post_mult
            if drift and etype == "pricing_page_view":
                rate = rate * 1.8 + 0.4  # a redesigned site sends everyone past the pricing page
            counts = rng.poisson(np.minimum(rate, 40.0))
            if etype == "webinar_registration":
                registrations = counts
        idx = np.repeat(np.arange(len(intent), dtype=np.int64), counts)
        leads_out.append(idx)
        types_out.append(np.full(idx.size, _TYPE_INDEX[etype], dtype=np.int8))
        stage_code = {"": -1, "top": 0, "mid": 1, "bottom": 2}[stage]
        stages_out.append(np.full(idx.size, stage_code, dtype=np.int8))
        titles_out.append(
            rng.integers(0, 3, idx.size).astype(np.int8) if stage else np.full(idx.size, -1, np.int8)
        )
    lead_idx = np.concatenate(leads_out)
    u = rng.random(lead_idx.size)
    frac = u ** (1.0 / skew[lead_idx])
    when = start[lead_idx] + (frac * span[lead_idx]).astype(np.int64)
    return {
        "lead": lead_idx,
        "ts": when,
        "type": np.concatenate(types_out),
        "stage": np.concatenate(stages_out),
        "title": np.concatenate(titles_out),
    }


def _stage_history(
    rng: np.random.Generator,
    n: int,
    created: np.ndarray,
    scored: np.ndarray,
    positive: np.ndarray,
    hot: np.ndarray,
) -> dict[str, np.ndarray]:
    rows_lead: list[np.ndarray] = []
    rows_stage: list[str] = []
    rows_stage_idx: list[np.ndarray] = []
    rows_ts: list[np.ndarray] = []
    rows_reason: list[np.ndarray] = []
    stage_names: list[str] = []

    def add(idx: np.ndarray, stage: str, ts: np.ndarray, reason: np.ndarray | None = None) -> None:
        if stage not in stage_names:
            stage_names.append(stage)
        rows_lead.append(idx)
        rows_stage.append(stage)
        rows_stage_idx.append(np.full(idx.size, stage_names.index(stage), dtype=np.int8))
        rows_ts.append(ts)
        rows_reason.append(reason if reason is not None else np.full(idx.size, -1, dtype=np.int8))

    all_idx = np.arange(n)
    add(all_idx, "Inquiry", created)

    def days(lo: float, hi: float, k: int) -> np.ndarray:
        return (rng.uniform(lo, hi, k) * _DAY_MS).astype(np.int64)

    mql = positive | (rng.random(n) < 0.15 + 0.45 * hot)
    mql_idx = all_idx[mql]
    add(mql_idx, "MQL", scored[mql_idx])
    pos_idx = all_idx[positive]
    sal_t = scored[pos_idx] + days(0.05, 5, pos_idx.size)
    add(pos_idx, "SAL", sal_t)
    sql_t = np.minimum(sal_t + days(0.2, 60, pos_idx.size), scored[pos_idx] + 89 * _DAY_MS)
    add(pos_idx, "SQL", sql_t)
    back = rng.random(pos_idx.size) < 0.05  # sent back by sales, later accepted again
    add(pos_idx[back], "SAL", sql_t[back] + days(1, 5, int(back.sum())))
    opp = rng.random(pos_idx.size) < 0.6
    opp_t = sql_t + days(2, 30, pos_idx.size)
    add(pos_idx[opp], "Opportunity", opp_t[opp])
    won = opp & (rng.random(pos_idx.size) < 0.35)
    add(pos_idx[won], "Customer", opp_t[won] + days(10, 120, pos_idx.size)[won])

    neg_mql = all_idx[mql & ~positive]
    draw = rng.random(neg_mql.size)
    recycled = neg_mql[draw < 0.35]
    disq = neg_mql[(draw >= 0.35) & (draw < 0.85)]
    rec_t = scored[recycled] + days(5, 40, recycled.size)
    add(recycled, "Recycled", rec_t)
    again = rng.random(recycled.size) < 0.4  # backward move: recycled, nurtured, MQL again
    re_idx = recycled[again]
    re_t = rec_t[again] + days(20, 60, re_idx.size)
    add(re_idx, "Inquiry", re_t)
    late = rng.random(re_idx.size) < 0.3  # reaches SQL, but after the 90-day window
    late_idx = re_idx[late]
    late_t = np.maximum(re_t[late], scored[late_idx] + 91 * _DAY_MS) + days(1, 60, late_idx.size)
    add(late_idx, "MQL", late_t)
    add(late_idx, "SQL", late_t + days(1, 10, late_idx.size))
    reason = rng.choice(len(DISQUALIFY_REASONS), size=disq.size, p=[0.42, 0.12, 0.16, 0.18, 0.12])
    add(disq, "Disqualified", scored[disq] + days(0.1, 10, disq.size), reason.astype(np.int8))
    return {
        "lead": np.concatenate(rows_lead),
        "stage": np.concatenate(rows_stage_idx),
        "stage_names": np.array(stage_names, dtype=object),
        "ts": np.concatenate(rows_ts),
        "reason": np.concatenate(rows_reason),
    }


def label_from_stages(
    stages: pd.DataFrame,
    anchors: pd.DataFrame,
    *,
    reached: tuple[str, ...] = ("SQL",),
    within_days: int = 90,
    id_col: str = "lead_id",
    time_col: str = "scored_at",
) -> np.ndarray:
    """1 where the lead entered one of ``reached`` within ``within_days`` of its scoring time."""
    ids = pd.Index(anchors[id_col].to_numpy())
    pos = ids.get_indexer(stages[id_col].to_numpy())
    anchor_t = anchors[time_col].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    entered = stages["entered_at"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    is_stage = stages["stage"].astype(str).isin(reached).to_numpy()
    ok = (pos >= 0) & is_stage
    delta = entered[ok] - anchor_t[pos[ok]]
    hit = (delta >= 0) & (delta <= within_days * _DAY_MS)
    label = np.zeros(len(anchors), dtype=np.int8)
    label[pos[ok][hit]] = 1
    return label


def _dict_array(codes: np.ndarray, names: tuple[str, ...] | np.ndarray) -> pa.Array:
    dictionary = pa.array(list(names), type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), dictionary).cast(pa.string())


def _ts_array(ms: np.ndarray) -> pa.Array:
    return pa.array(ms.astype("datetime64[ms]"), type=pa.timestamp("ms"))


def synthetic_spec() -> DatasetSpec:
    """The shipped spec of the generator's data: its engagement roll-ups are declared there, so the
    generator's leads table carries what training computes from its activity log."""
    return load_spec(str(SHIPPED_CONFIGS / "datasets" / "synthetic.yaml"))


def generate(cfg: GeneratorConfig) -> dict[str, pa.Table]:
    """Draw the four tables (leads, events, stage_history, accounts) for one configuration."""
    if cfg.leads < 1:
        raise ValueError("leads must be at least 1")
    if not 0.0 <= cfg.fault_rate <= 0.5:
        raise ValueError("fault rate must be between 0 and 0.5")
    rng = np.random.default_rng([cfg.seed, int(cfg.drift)])
    n = cfg.leads
    n_accounts = max(1, n // 3)
    acc = _accounts(rng, n_accounts, cfg.drift)
    acc_id_offset = 1_000_000 if cfg.drift else 0

    account = rng.integers(0, n_accounts, n)
    seniority = _choice(rng, n, SENIORITY_W)
    department = _choice(rng, n, DEPARTMENT_W)
    source_w = SOURCE_W + (0.0,) if not cfg.drift else tuple(w * 0.82 for w in SOURCE_W) + (0.18,)
    source = _choice(rng, n, source_w)
    freemail = rng.random(n) < np.where(seniority == 5, 0.8, 0.18)
    start, months = (DRIFT_START, DRIFT_MONTHS) if cfg.drift else (BASE_START, BASE_MONTHS)
    created = (
        start.astype(np.int64)
        + np.sort(rng.integers(0, months * 30 * _DAY_MS, n))
        + rng.integers(0, _DAY_MS // 4, n)
    )
    scored = created + (rng.uniform(2, 21, n) * _DAY_MS).astype(np.int64)

    lead = {
        "seniority": seniority,
        "industry": acc["industry"][account],
        "employees": acc["employees"][account],
        "country": acc["country"][account],
        "tech": acc["tech"][account],
        "freemail": freemail.astype(np.int8),
        "source": source,
    }
    fitness = np.array([0.6, 0.5, 0.4, 0.2, 0.0, -0.6])[seniority] + 0.3 * np.isin(
        lead["industry"], [0, 1, 2, 3]
    )
    intent = rng.normal(0.0, 1.0, n) + 0.4 * fitness + np.where(source == 4, 0.4, 0.0)
    if cfg.drift:
        intent = intent - np.where(source == len(SOURCES), 0.6, 0.0)
    skew = np.exp(rng.normal(0.2 + 0.25 * np.clip(intent, -2, 2), 0.5))
    pre = _draw_events(rng, intent, fitness, created, scored, skew, np.ones(n), post=False, drift=cfg.drift)
    lead_ids = np.arange(n, dtype=np.int64) + (10_000_000 if cfg.drift else 1)
    anchors = pd.DataFrame({"lead_id": lead_ids, "scored_at": scored.astype("datetime64[ms]")})
    pre_frame = _events_frame(pre, lead_ids)
    eng = rollups_for_spec(pre_frame, anchors, synthetic_spec())

    logit = _true_logit(lead, eng, cfg.segment_effect)
    true_p = 1.0 / (1.0 + np.exp(-logit))
    positive = rng.random(n) < true_p

    post = _draw_events(
        rng,
        intent + 1.2 * positive,
        fitness,
        scored + 1,
        scored + 75 * _DAY_MS,
        np.ones(n),
        1.0 + positive * 1.5,
        post=True,
        drift=cfg.drift,
    )
    points_hot = eng["pricing_page_views_total"].to_numpy() > 0
    stages = _stage_history(rng, n, created, scored, positive, points_hot)
    stage_frame = pd.DataFrame(
        {
            "lead_id": lead_ids[stages["lead"]],
            "stage": stages["stage_names"][stages["stage"]],
            "entered_at": stages["ts"].astype("datetime64[ms]"),
        }
    )
    label = label_from_stages(stage_frame, anchors)
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

    countries = np.array([c[0] for c in COUNTRIES], dtype=object)[lead["country"]]
    regions = np.array([c[1] for c in COUNTRIES], dtype=object)[lead["country"]]
    titles = _titles()[seniority, department]
    domains = acc["domain"][account]
    emails = _emails(rng, n, domains, freemail)

    table = {
        "lead_id": lead_ids,
        "account_id": account.astype(np.int64) + 1 + acc_id_offset,
        "email": emails,
        "job_title": titles,
        "seniority": np.array(SENIORITIES, dtype=object)[seniority],
        "department": np.array(DEPARTMENTS, dtype=object)[department],
        "company_name": acc["name"][account],
        "industry": np.array(INDUSTRIES, dtype=object)[lead["industry"]],
        "employee_count": lead["employees"].astype(np.int64),
        "country": countries,
        "region": regions,
        "tech_stack": np.array(TECH_STACKS, dtype=object)[lead["tech"]],
        "email_domain_type": np.where(freemail, "free-mail", "corporate").astype(object),
        "lead_source": np.array((*SOURCES, DRIFT_SOURCE), dtype=object)[source],
        "created_at": created,
        "scored_at": scored,
    }
    leads_cols = dict(table)
    for col in eng.columns:
        leads_cols[col] = eng[col].to_numpy()
    leads_cols["call_duration_sec"] = call
    leads_cols["true_p_sql"] = np.round(true_p, 6)
    leads_cols["sql_within_90d"] = label.astype(np.int8)
    leads_cols = _inject_faults(rng, leads_cols, cfg.fault_rate)

    leads_table = _leads_table(leads_cols)
    all_events = {k: np.concatenate([pre[k], post[k]]) for k in ("lead", "ts", "type", "stage", "title")}
    events_table = _events_table(all_events, lead_ids)
    stage_table = pa.table(
        {
            "lead_id": pa.array(lead_ids[stages["lead"]]),
            "stage": _dict_array(stages["stage"], stages["stage_names"]),
            "entered_at": _ts_array(stages["ts"]),
            "reason": _dict_array_nullable(stages["reason"], DISQUALIFY_REASONS),
        }
    )
    order = np.lexsort((stages["ts"], lead_ids[stages["lead"]]))
    stage_table = stage_table.take(pa.array(order))
    accounts_table = pa.table(
        {
            "account_id": pa.array(np.arange(n_accounts, dtype=np.int64) + 1 + acc_id_offset),
            "company_name": pa.array(acc["name"], type=pa.string()),
            "domain": pa.array(acc["domain"], type=pa.string()),
            "industry": _dict_array(acc["industry"], INDUSTRIES),
            "employee_count": pa.array(acc["employees"]),
            "country": _dict_array(acc["country"], tuple(c[0] for c in COUNTRIES)),
            "region": _dict_array(acc["country"], tuple(c[1] for c in COUNTRIES)),
            "tech_stack": _dict_array(acc["tech"], TECH_STACKS),
        }
    )
    return {
        "leads": leads_table,
        "events": events_table,
        "stage_history": stage_table,
        "accounts": accounts_table,
        "feedback": feedback_from_stages(stage_table),
    }


REPS = ("Ana Ruiz", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eva Novak", "Farid Haddad")


def feedback_from_stages(stage_table: pa.Table) -> pa.Table:
    """What the CRM would export as sales feedback: each MQL accepted (SAL) or rejected with a reason.

    Derived from the stage history without new random draws, so adding it changed no other table.
    """
    st = stage_table.to_pandas()
    st["stage"] = st["stage"].astype(str)
    first_mql = (
        st[st["stage"] == "MQL"].groupby("lead_id", sort=True, as_index=False)["entered_at"].min()
    ).rename(columns={"entered_at": "mql_at"})
    decided = st[st["stage"].isin(["SAL", "Disqualified"])].merge(first_mql, on="lead_id")
    decided = decided[decided["entered_at"] >= decided["mql_at"]]
    decided = decided.sort_values(["lead_id", "entered_at"], kind="stable").drop_duplicates("lead_id")
    accepted = (decided["stage"] == "SAL").to_numpy()
    reason = decided["reason"].astype(object).where(~accepted, None)
    ids = decided["lead_id"].to_numpy()
    return pa.table(
        {
            "lead_id": pa.array(ids),
            "decision": pa.array(np.where(accepted, "accepted", "rejected").astype(object), type=pa.string()),
            "reason": pa.array(reason.to_numpy(dtype=object), type=pa.string()),
            "mql_at": _ts_array(decided["mql_at"].to_numpy(dtype="datetime64[ms]").astype(np.int64)),
            "decided_at": _ts_array(decided["entered_at"].to_numpy(dtype="datetime64[ms]").astype(np.int64)),
            "rep": pa.array(np.array(REPS, dtype=object)[ids % len(REPS)], type=pa.string()),
        }
    )


def _dict_array_nullable(codes: np.ndarray, names: tuple[str, ...]) -> pa.Array:
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(names))).cast(pa.string())


def _events_frame(ev: dict[str, np.ndarray], lead_ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": lead_ids[ev["lead"]],
            "occurred_at": ev["ts"].astype("datetime64[ms]"),
            "event_type": pd.Categorical.from_codes(ev["type"], categories=list(_TYPE_NAMES)),
            "funnel_stage": pd.Categorical.from_codes(ev["stage"], categories=["top", "mid", "bottom"]),
        }
    )


def _events_table(ev: dict[str, np.ndarray], lead_ids: np.ndarray) -> pa.Table:
    order = np.lexsort((ev["type"], ev["ts"], ev["lead"]))
    lead = ev["lead"][order]
    stage = ev["stage"][order]
    title = ev["title"][order]
    title_code = np.where(stage >= 0, stage * 3 + title, -1)
    titles = tuple(t for s in ("top", "mid", "bottom") for t in CONTENT[s])
    return pa.table(
        {
            "event_id": pa.array(np.arange(order.size, dtype=np.int64) + 1),
            "lead_id": pa.array(lead_ids[lead]),
            "occurred_at": _ts_array(ev["ts"][order]),
            "event_type": _dict_array(ev["type"][order], _TYPE_NAMES),
            "funnel_stage": _dict_array_nullable(stage, ("top", "mid", "bottom")),
            "content_title": _dict_array_nullable(title_code.astype(np.int16), titles),
        }
    )


def _inject_faults(
    rng: np.random.Generator, cols: dict[str, np.ndarray], rate: float
) -> dict[str, np.ndarray]:
    """Data-quality faults a CRM export really has, each kind on about ``rate`` of the leads."""
    n = len(cols["lead_id"])
    k = int(round(rate * n))
    if k == 0:
        return cols
    for name in ("job_title", "industry", "department", "tech_stack", "country", "email"):
        cols[name] = cols[name].copy()
    cols["employee_count"] = cols["employee_count"].astype(np.float64)
    # Placeholders left at a form's default.
    rows = rng.choice(n, size=k, replace=False)
    which = rng.integers(0, len(PLACEHOLDER_COLUMNS), k)
    for r, w, ph in zip(rows, which, rng.integers(0, 2, k), strict=True):
        cols[PLACEHOLDER_COLUMNS[w]][r] = PLACEHOLDER_VALUES[ph]
    # Country spelled several ways.
    variant_countries = np.array(list(COUNTRY_VARIANTS), dtype=object)
    candidates = np.flatnonzero(np.isin(cols["country"], variant_countries))
    rows = rng.choice(candidates, size=min(k, candidates.size), replace=False)
    for r, pick in zip(rows, rng.integers(0, 10, rows.size), strict=True):
        variants = COUNTRY_VARIANTS[cols["country"][r]]
        cols["country"][r] = variants[pick % len(variants)]
    # Impossible values: negative or absurd company sizes.
    rows = rng.choice(n, size=k, replace=False)
    cols["employee_count"][rows] = np.where(rng.random(k) < 0.5, -1.0, 99_999_999.0)
    # Duplicate contacts: the same person again, email differing in case or spaces.
    src = np.sort(rng.choice(n, size=k, replace=False))
    dup = {name: values[src].copy() for name, values in cols.items()}
    dup["lead_id"] = cols["lead_id"].max() + 1 + np.arange(k, dtype=np.int64)
    style = rng.integers(0, 3, k)
    dup["email"] = np.array(
        [
            e.upper() if s == 0 else (f"  {e} " if s == 1 else e.capitalize())
            for e, s in zip(dup["email"], style, strict=True)
        ],
        dtype=object,
    )
    return {name: np.concatenate([cols[name], dup[name]]) for name in cols}


def _leads_table(cols: dict[str, np.ndarray]) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for name, values in cols.items():
        if name in {"created_at", "scored_at"}:
            arrays[name] = _ts_array(values)
        elif values.dtype == object:
            arrays[name] = pa.array(values, type=pa.string())
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


def write_dataset(tables: dict[str, pa.Table], out_dir: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write the generator's tables into ``out_dir`` (each file atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "parquet" if fmt == "parquet" else "csv"
    return [write_arrow(table, out / f"{name}.{suffix}", fmt) for name, table in tables.items()]
