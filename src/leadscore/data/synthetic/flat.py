"""A flat export shaped like a bank's telemarketing list: what many real CRM exports look like.

Mostly categorical fields with long tails and placeholder values ("unknown", "nonexistent", 999
for "never contacted"), a few numeric fields with outliers, about 11% positive, no time column, and
one column filled in after the contact (the call's duration, a leak). The outcome is drawn from a
known P(SQL) (``true_p_sql``) that mixes main effects, a rare-category tail, an interaction and a
saturating numeric effect, so a model's AUC can be compared with the truth's on other data than
the B2B generator's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

JOBS = (
    "admin.",
    "blue-collar",
    "technician",
    "services",
    "management",
    "retired",
    "entrepreneur",
    "self-employed",
    "housemaid",
    "unemployed",
    "student",
    "unknown",
)
JOB_SHARE = (0.25, 0.22, 0.16, 0.1, 0.07, 0.04, 0.035, 0.035, 0.026, 0.025, 0.021, 0.008)
JOB_EFFECT = (0.0, -0.45, -0.1, -0.3, 0.0, 0.9, -0.2, 0.0, -0.1, 0.3, 1.1, 0.1)
MONTHS = ("may", "jul", "aug", "jun", "nov", "apr", "oct", "sep", "mar", "dec")
MONTH_SHARE = (0.33, 0.17, 0.15, 0.13, 0.1, 0.064, 0.017, 0.014, 0.013, 0.012)
MONTH_EFFECT = (-0.5, -0.2, 0.0, -0.1, -0.2, 0.2, 1.2, 1.2, 1.5, 1.4)
EDUCATION = (
    "university.degree",
    "high.school",
    "basic.9y",
    "professional.course",
    "basic.4y",
    "basic.6y",
    "unknown",
    "illiterate",
)
EDUCATION_SHARE = (0.3, 0.23, 0.15, 0.127, 0.1, 0.055, 0.0375, 0.0005)
POUTCOME = ("nonexistent", "failure", "success")
POUTCOME_SHARE = (0.86, 0.105, 0.035)
POUTCOME_EFFECT = (0.0, -0.1, 2.0)
BASE = -2.2  # about 11% positive


def _pick(rng: np.random.Generator, values: tuple[str, ...], share: tuple[float, ...], n: int) -> np.ndarray:
    p = np.asarray(share, dtype=float)
    return rng.choice(len(values), size=n, p=p / p.sum())


def bank_like(n: int, seed: int) -> pd.DataFrame:
    """``n`` contacts with a ``y`` of "yes"/"no" drawn from ``true_p_sql``; seeded, the same bytes
    for the same seed."""
    rng = np.random.default_rng([seed, 20_231])
    job = _pick(rng, JOBS, JOB_SHARE, n)
    month = _pick(rng, MONTHS, MONTH_SHARE, n)
    education = _pick(rng, EDUCATION, EDUCATION_SHARE, n)
    poutcome = _pick(rng, POUTCOME, POUTCOME_SHARE, n)
    contact_cellular = rng.random(n) < 0.63
    age = np.clip(np.round(rng.gamma(9.0, 4.4, n)), 17, 98)
    recorded_age = age.copy()
    typo = rng.random(n) < 0.003  # entry errors: a real export's numeric fields have outliers
    recorded_age[typo] = rng.choice([0.0, 999.0], size=int(typo.sum()))
    campaign = 1 + rng.negative_binomial(1, 0.38, n)
    never = poutcome == 0
    pdays = np.where(never, 999, rng.integers(0, 27, n))
    previous = np.where(never, 0, 1 + rng.poisson(0.4, n))
    euribor = np.round(np.where(rng.random(n) < 0.65, rng.normal(4.9, 0.1, n), rng.normal(1.2, 0.4, n)), 3)
    logit = (
        BASE
        + np.take(JOB_EFFECT, job)
        + np.take(MONTH_EFFECT, month)
        + np.take(POUTCOME_EFFECT, poutcome)
        + 0.35 * contact_cellular
        + 0.25 * (education == 0)
        - 0.55 * np.tanh((euribor - 3.0) / 1.0)
        - 0.18 * np.log(campaign)
        + 0.012 * np.clip(np.abs(age - 45) - 15, 0, None)
        + 0.6 * ((job == JOBS.index("student")) & (month >= 6))  # a rare pair that matters
    )
    true_p = 1.0 / (1.0 + np.exp(-logit))
    y = rng.random(n) < true_p
    duration = np.round(rng.gamma(2.0, 110.0, n) * np.where(y, 2.4, 1.0))  # known only after the call
    return pd.DataFrame(
        {
            "contact_id": np.arange(1, n + 1),
            "age": recorded_age,
            "job": np.take(JOBS, job),
            "education": np.take(EDUCATION, education),
            "contact": np.where(contact_cellular, "cellular", "telephone"),
            "month": np.take(MONTHS, month),
            "campaign": campaign,
            "pdays": pdays,
            "previous": previous,
            "poutcome": np.take(POUTCOME, poutcome),
            "euribor3m": euribor,
            "duration": duration,
            "y": np.where(y, "yes", "no"),
            "true_p_sql": np.round(true_p, 6),
        }
    )
