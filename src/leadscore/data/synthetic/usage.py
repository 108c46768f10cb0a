"""A trial product's usage log beside the generator's leads, for product-qualified leads (PQL).

Some leads use a trial before they are scored: the product logs each user's events by email (as a
product does, not by CRM id: case and spaces as the user typed them), and how much a lead used it
raises its chance of becoming an SQL on top of what the CRM knows. The leads' outcome is drawn again
with that effect, so a model that reads the usage log can find it and one that does not cannot.
Seeded: the same tables and seed give the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

USAGE_EVENTS = ("Log In", "Create Project", "Invite Teammate", "Use Integration")
USAGE_SHARE = (0.55, 0.2, 0.15, 0.1)
TRIAL_SHARE = 0.4  # leads that tried the product before they were scored
WINDOW_DAYS = 14  # usage falls in the two weeks before the scoring moment
EFFECT = 1.2  # log-odds per standard deviation of a trial user's log usage


def with_product_usage(
    tables: dict[str, pa.Table], seed: int, effect: float = EFFECT
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The leads with ``sql_within_90d`` drawn again from their P(SQL) plus the usage effect (the
    usage is in ``true_p_sql`` too), and the usage log (``User Email``, ``Timestamp``, ``Event``)."""
    rng = np.random.default_rng(seed)
    leads = tables["leads"].to_pandas()
    n = len(leads)
    trial = rng.random(n) < TRIAL_SHARE
    intensity = np.where(trial, rng.lognormal(1.5, 0.9, n), 0.0)
    counts = rng.poisson(intensity)
    used = np.log1p(counts)
    z = np.where(trial, (used - used[trial].mean()) / max(used[trial].std(), 1e-9), 0.0)
    p = np.clip(leads["true_p_sql"].to_numpy(dtype=float), 1e-6, 1 - 1e-6)
    p_new = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + effect * z)))
    leads = leads.assign(true_p_sql=p_new, sql_within_90d=(rng.random(n) < p_new).astype(int))
    owner = np.repeat(np.arange(n), counts)
    scored = pd.to_datetime(leads["scored_at"]).to_numpy()[owner]
    before = (rng.random(len(owner)) * WINDOW_DAYS * 86_400_000).astype("timedelta64[ms]")
    emails = leads["email"].astype(str).to_numpy()[owner]
    typed = np.where(rng.random(len(owner)) < 0.3, np.char.upper(emails.astype(str)), emails)
    usage = pd.DataFrame(
        {
            "User Email": typed,
            "Timestamp": scored - before,
            "Event": np.asarray(USAGE_EVENTS, dtype=object)[
                rng.choice(len(USAGE_EVENTS), len(owner), p=USAGE_SHARE)
            ],
        }
    )
    return leads, usage.sort_values("Timestamp", kind="stable").reset_index(drop=True)
