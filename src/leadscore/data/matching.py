"""Leads matched to their account: the one matcher training, scoring, the service and Spark use.

A lead whose ``lead_account`` column names a known account keeps it (method ``id``). Else its
corporate email domain is matched to the accounts' website domains (scheme, ``www.``, port, path and
case removed; a free-mail domain never matches, nor does a sub-domain's parent that is a public
suffix), method ``domain``; else its normalised company name to the accounts' (case, punctuation,
``&``/``and`` and legal suffixes such as Inc, Ltd, LLC, GmbH, Corp, S.A., plc removed), method
``company``. Two accounts with the same domain (or name) match nobody by it: such a lead is counted
as ambiguous. A lead matched by none has method ``none``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.values import is_missing, lead_key, map_values

METHODS = ("id", "domain", "company", "none")
MATCH_COLUMNS = ("lead_id", "account_id", "method")

# Free and ISP mail: an address there says nothing of the employer (a spec adds its own with
# ``accounts.match.free_mail``).
FREE_MAIL = frozenset(
    """
    gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.co.in yahoo.co.jp yahoo.fr yahoo.de yahoo.es
    yahoo.it yahoo.com.br ymail.com rocketmail.com hotmail.com hotmail.co.uk hotmail.fr hotmail.de
    hotmail.it hotmail.es outlook.com outlook.fr outlook.de live.com live.co.uk live.fr msn.com aol.com
    icloud.com me.com mac.com protonmail.com proton.me pm.me gmx.com gmx.de gmx.net gmx.at web.de
    mail.com email.com yandex.ru yandex.com mail.ru inbox.ru bk.ru list.ru qq.com 163.com 126.com
    sina.com zoho.com zohomail.com fastmail.com hey.com tutanota.com tuta.io rediffmail.com libero.it
    virgilio.it orange.fr wanadoo.fr free.fr laposte.net sfr.fr t-online.de freenet.de btinternet.com
    sky.com virginmedia.com comcast.net verizon.net att.net sbcglobal.net bellsouth.net cox.net
    charter.net earthlink.net juno.com naver.com daum.net hanmail.net seznam.cz wp.pl o2.pl interia.pl
    onet.pl bigpond.com optusnet.com.au shaw.ca rogers.com sympatico.ca uol.com.br bol.com.br
    terra.com.br hushmail.com inbox.com lycos.com
    """.split()
)

# Legal forms removed from the end of a company name ("Acme Holdings Ltd." -> "acme holdings").
LEGAL_SUFFIXES = frozenset(
    """
    inc incorporated ltd limited llc llp lp plc corp corporation co company gmbh ag kg mbh sa sas sarl
    srl spa bv nv oy ab as aps asa pty pte kk sl sdn bhd
    """.split()
)
# The second-level labels under which a registrable domain has three labels (acme.co.uk).
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "ac", "edu", "ne", "or", "gob"})
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def web_domain(value: Any) -> str | None:
    """A website's or an address's domain: ``https://www.Acme.com:443/about`` -> ``acme.com``."""
    if is_missing(value):
        return None
    text = str(value).strip().casefold()
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.split(r"[/?#\s]", text, maxsplit=1)[0].split(":", 1)[0].strip(".")
    if text.startswith("www."):
        text = text[4:]
    return text if "." in text and _NOT_WORD.sub("", text) else None


def email_domain(value: Any) -> str | None:
    """An email address's domain (None for something that is not an address)."""
    if is_missing(value) or "@" not in str(value):
        return None
    return web_domain(value)


def parent_domains(domain: str) -> list[str]:
    """The domain and its parents down to the registrable one (``eu.acme.co.uk`` -> itself,
    ``acme.co.uk``), never a public suffix (``co.uk``) or a top-level domain."""
    labels = domain.split(".")
    out = [domain]
    for start in range(1, len(labels) - 1):
        rest = labels[start:]
        if len(rest) == 2 and rest[0] in _SECOND_LEVEL:
            break
        out.append(".".join(rest))
    return out


def company_key(value: Any) -> str | None:
    """A company name as matching compares it: case, punctuation, ``&``/``and`` and trailing legal
    forms removed ("Smith & Sons, Inc." and "smith and sons" -> ``smith sons``)."""
    if is_missing(value):
        return None
    text = str(value).casefold().replace("&", " and ")
    text = re.sub(r"(?<=\b[a-z])\.(?=[a-z]\b)", "", text)  # s.a. -> sa., n.v. -> nv.
    words = [w for w in _NOT_WORD.sub(" ", text.replace("'", "")).split() if w != "and"]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words) or None


@dataclass(frozen=True)
class MatchColumns:
    """The columns the matcher reads: the leads' id, account, email and company; the accounts' id,
    website and name (None: not there)."""

    lead_id: str
    account_id: str
    lead_account: str | None = None
    email: str | None = None
    company: str | None = None
    website: str | None = None
    name: str | None = None
    free_mail: frozenset[str] = FREE_MAIL


@dataclass
class Matches:
    """Each lead's account and how it was found, with the counts ``validate`` reports."""

    frame: pd.DataFrame  # lead_id, account_id (None: unmatched), method
    counts: dict[str, int] = field(default_factory=dict)

    def account_of(self) -> dict[str, str]:
        """The matched leads' account by lead key."""
        hit = self.frame.loc[self.frame["method"] != "none"]
        return dict(zip(hit["lead_id"], hit["account_id"], strict=True))


def match_leads(leads: pd.DataFrame, accounts: pd.DataFrame, cols: MatchColumns) -> Matches:
    """Every lead of ``leads`` with its account: by its own account column, else email domain,
    else company name (ambiguous domains and names match nobody, and are counted)."""
    account_keys = map_values(accounts[cols.account_id], lead_key)
    known = set(account_keys) - {""}
    n = len(leads)
    found = np.full(n, None, dtype=object)
    method = np.full(n, "none", dtype=object)
    counts = dict.fromkeys(METHODS, 0) | {"ambiguous": 0, "unknown_account": 0, "free_mail": 0}
    if cols.lead_account is not None:
        given = map_values(leads[cols.lead_account], lead_key).to_numpy(dtype=object)
        ok = np.isin(given, list(known))
        found[ok], method[ok] = given[ok], "id"
        counts["unknown_account"] = int(((given != "") & ~ok).sum())
    ambiguous = np.zeros(n, dtype=bool)
    if cols.email is not None and cols.website is not None:
        domains = map_values(leads[cols.email], email_domain)
        free = domains.isin(cols.free_mail).to_numpy()
        counts["free_mail"] = int(free.sum())
        index, twice = _unique_index(map_values(accounts[cols.website], web_domain), account_keys)
        hits = map_values(domains.where(~free), lambda d: _by_domain(d, index, twice))
        _take(hits, found, method, ambiguous, "domain")
    if cols.company is not None and cols.name is not None:
        index, twice = _unique_index(map_values(accounts[cols.name], company_key), account_keys)
        hits = map_values(map_values(leads[cols.company], company_key), lambda k: _lookup(k, index, twice))
        _take(hits, found, method, ambiguous, "company")
    for m in METHODS:
        counts[m] = int((method == m).sum())
    counts["ambiguous"] = int((ambiguous & (method == "none")).sum())
    frame = pd.DataFrame(
        {
            "lead_id": map_values(leads[cols.lead_id], lead_key).to_numpy(dtype=object),
            "account_id": found,
            "method": method,
        }
    )
    return Matches(frame, counts)


AMBIGUOUS = "\x00ambiguous"  # a key two accounts share: it matches nobody


def _unique_index(keys: pd.Series, account_ids: pd.Series) -> tuple[dict[str, str], set[str]]:
    """Key -> account for keys exactly one account has; the keys several accounts share."""
    pairs = pd.DataFrame({"key": keys.to_numpy(), "id": account_ids.to_numpy()})
    pairs = pairs.loc[pairs["key"].notna() & (pairs["id"] != "")].drop_duplicates()
    shared = pairs["key"].duplicated(keep=False)
    once = pairs.loc[~shared]
    return dict(zip(once["key"], once["id"], strict=True)), set(pairs.loc[shared, "key"])


def _lookup(key: Any, index: dict[str, str], twice: set[str]) -> str | None:
    if key is None:
        return None
    if key in twice:
        return AMBIGUOUS
    return index.get(key)


def _by_domain(domain: Any, index: dict[str, str], twice: set[str]) -> str | None:
    """The account of a domain or, for a sub-domain (``eu.acme.com``), of its nearest parent."""
    if not isinstance(domain, str):
        return None
    for candidate in parent_domains(domain):
        hit = _lookup(candidate, index, twice)
        if hit is not None:
            return hit
    return None


def _take(hits: pd.Series, found: np.ndarray, method: np.ndarray, ambiguous: np.ndarray, name: str) -> None:
    """Fill the leads still unmatched from ``hits`` (an account key, AMBIGUOUS or None)."""
    values = hits.to_numpy(dtype=object)
    open_ = method == "none"
    shared = open_ & (values == AMBIGUOUS)
    ambiguous |= shared
    take = open_ & ~pd.isna(values) & (values != AMBIGUOUS)
    found[take], method[take] = values[take], name


def free_mail_domains(extra: Iterable[str]) -> frozenset[str]:
    """The shipped free-mail domains with a spec's own."""
    return FREE_MAIL | {d.strip().casefold().removeprefix("@") for d in extra if d.strip()}
