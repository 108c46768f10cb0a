"""Accounts: the companies leads work for (industry, size, country, tech stack, name, domain)."""

from __future__ import annotations

import numpy as np

from leadscore.data.synthetic.vocab import COUNTRIES, INDUSTRY_W, NAME_A, NAME_B, TECH_W, choice


def draw_accounts(rng: np.random.Generator, n_accounts: int, drift: bool) -> dict[str, np.ndarray]:
    industry = choice(rng, n_accounts, INDUSTRY_W)
    country = choice(rng, n_accounts, tuple(c[2] for c in COUNTRIES))
    employees = np.round(np.exp(rng.normal(5.0, 1.7, n_accounts))).clip(1, 400_000).astype(np.int64)
    tech_w = TECH_W if not drift else (0.22, 0.30, 0.12, 0.08, 0.07, 0.21)
    tech = choice(rng, n_accounts, tech_w)
    a = rng.integers(0, len(NAME_A), n_accounts)
    b = rng.integers(0, len(NAME_B), n_accounts)
    serial = np.arange(n_accounts)
    names = np.array(
        [f"{NAME_A[i]}{NAME_B[j]} {k}" for i, j, k in zip(a, b, serial, strict=True)], dtype=object
    )
    domains = np.array(
        [f"{NAME_A[i].lower()}{NAME_B[j]}{k}.com" for i, j, k in zip(a, b, serial, strict=True)],
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
