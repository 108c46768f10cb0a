"""People: the job titles and email addresses of the leads of an account."""

from __future__ import annotations

import numpy as np

from leadscore.data.synthetic.vocab import DEPARTMENTS, FIRST_NAMES, FREEMAIL, LAST_NAMES, SENIORITIES


def titles_table() -> np.ndarray:
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


def draw_emails(rng: np.random.Generator, n: int, domains: np.ndarray, freemail: np.ndarray) -> np.ndarray:
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    free = rng.integers(0, len(FREEMAIL), n)
    return np.array(
        [
            f"{FIRST_NAMES[f]}.{LAST_NAMES[g]}{i}@{FREEMAIL[k] if fm else dom}"
            for i, (f, g, k, fm, dom) in enumerate(zip(first, last, free, freemail, domains, strict=True))
        ],
        dtype=object,
    )
