"""How companies are written (``generate --accounts``), so matching has work to do: the accounts
table names each company with its legal form and its website in one of the ways CRMs hold it; each
lead writes its company its own way (case, a legal form or none, now and then a typo), some use a
regional sub-domain in their address, and a few companies share a name with another account."""

from __future__ import annotations

import numpy as np

LEGAL = (" Inc", " Inc.", ", Inc.", " LLC", " Ltd", " Ltd.", " GmbH", " Corp.", " S.A.", " plc")
SUBDOMAINS = ("eu", "us", "mail", "uk")
KNOWN_SHARE = 0.35  # leads sales already tied to an account (the leads' account_id column)
SHARED_NAME = 0.01  # accounts named as another account is
TYPO = 0.02  # leads whose company has a typo (matched only by domain or id, if at all)
PARTNER = 0.005  # corporate addresses at another account's domain (a partner writing for its client)


def account_names(rng: np.random.Generator, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each account's base name (a few share another's) and its name in the accounts table."""
    n = len(base)
    base = base.copy()
    shared = np.flatnonzero(rng.random(n) < SHARED_NAME)
    base[shared] = base[rng.integers(0, n, len(shared))]
    legal = np.array(LEGAL, dtype=object)[rng.integers(0, len(LEGAL), n)]
    return base, base + legal


def websites(rng: np.random.Generator, domains: np.ndarray) -> np.ndarray:
    """The accounts' website as CRMs hold it (a URL, a bare domain, upper case, a path)."""
    style = rng.integers(0, 4, len(domains))
    out = np.where(style == 0, "https://www." + domains + "/", domains)
    out = np.where(style == 2, "http://" + domains + "/about", out)
    return np.where(style == 3, np.char.upper(domains.astype(str)).astype(object), out).astype(object)


def lead_companies(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """Each lead's company as it typed it."""
    n = len(base)
    style = rng.integers(0, 4, n)
    legal = np.array(LEGAL, dtype=object)[rng.integers(0, len(LEGAL), n)]
    out = np.where(style == 1, base + legal, base)
    out = np.where(style == 2, np.char.upper(base.astype(str)).astype(object), out)
    out = np.where(style == 3, np.char.lower(base.astype(str)).astype(object), out)
    typo = np.flatnonzero(rng.random(n) < TYPO)
    out[typo] = [str(v)[1:] for v in out[typo]]  # its first letter lost
    return out.astype(object)


def lead_emails(
    rng: np.random.Generator, emails: np.ndarray, freemail: np.ndarray, domains: np.ndarray
) -> np.ndarray:
    """Some corporate addresses at a regional sub-domain (``dana@eu.acme.com``), and a few at
    another account's domain (a partner or agency writing for its client: matching by domain gets
    those wrong, as it would in a real CRM)."""
    sub = (~freemail) & (rng.random(len(emails)) < 0.15)
    prefix = np.array(SUBDOMAINS, dtype=object)[rng.integers(0, len(SUBDOMAINS), len(emails))]
    at = np.char.partition(emails.astype(str), "@")
    moved = at[:, 0].astype(object) + "@" + prefix + "." + at[:, 2].astype(object)
    partner = (~freemail) & ~sub & (rng.random(len(emails)) < PARTNER)
    elsewhere = at[:, 0].astype(object) + "@" + domains[rng.integers(0, len(domains), len(emails))]
    return np.where(sub, moved, np.where(partner, elsewhere, emails)).astype(object)


def known_accounts(rng: np.random.Generator, account_ids: np.ndarray) -> np.ndarray:
    """The leads' account column: filled for a share of them (None elsewhere)."""
    known = rng.random(len(account_ids)) < KNOWN_SHARE
    out = account_ids.astype(object)
    out[~known] = None
    return out
