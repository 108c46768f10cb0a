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
import pyarrow as pa

from leadscore.features.values import is_missing, lead_keys

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
    return None if is_missing(value) else web_domains(pd.Series([str(value)])).iloc[0]


def email_domain(value: Any) -> str | None:
    """An email address's domain (None for something that is not an address)."""
    return None if is_missing(value) else email_domains(pd.Series([str(value)])).iloc[0]


def web_domains(values: pd.Series) -> pd.Series:
    """``web_domain`` of a whole column at once (Arrow string kernels: no Python per row)."""
    text = _text(values).str.strip().str.lower().str.replace(r"^.*@", "", regex=True)
    for pattern in (r"^[a-z][a-z0-9+.-]*://", r"[/?#\s].*$", r":.*$", r"^\.+|\.+$", r"^www\."):
        text = text.str.replace(pattern, "", regex=True)
    valid = text.str.contains(".", regex=False) & text.str.contains(r"[0-9a-z]", regex=True)
    return _objects(text.where(valid.fillna(False)))


def email_domains(emails: pd.Series) -> pd.Series:
    """``email_domain`` of a whole column: the domain of what holds an ``@``, else None."""
    codes, domains = email_domain_codes(emails)
    return pd.Series(_spread(domains, codes), index=emails.index, dtype=object)


def email_domain_codes(emails: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``email_domains`` as each address's code (-1: none) into the domains of its distinct parts
    after the last ``@`` (None: not a domain): the part is cut once per address, the rest of
    ``web_domain`` runs once per distinct part (a company's people share a domain)."""
    text = _text(emails)
    at = text.str.contains("@", regex=False).fillna(False)
    codes, parts = pd.factorize(text.str.replace(r"^.*@", "", regex=True).where(at), use_na_sentinel=True)
    return np.asarray(codes), web_domains(pd.Series(parts, dtype=object)).to_numpy(dtype=object)


def _spread(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each code's value (-1: None), as an object array."""
    out = np.empty(len(values) + 1, dtype=object)
    out[:-1] = values
    out[-1] = None  # factorize's missing sentinel (-1) reads the last slot
    return out[codes]


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
    return None if is_missing(value) else company_keys(pd.Series([str(value)])).iloc[0]


_LEGAL_TAIL = r"^(.+?)(?: (?:" + "|".join(sorted(LEGAL_SUFFIXES)) + r"))+$"


def company_keys(names: pd.Series) -> pd.Series:
    """``company_key`` of a whole column at once (Arrow string kernels: no Python per row), each
    distinct name once (a company's leads share its name); a legal form alone stays the name."""
    codes, uniques = pd.factorize(names, use_na_sentinel=True)
    keys = _company_keys(pd.Series(uniques, dtype=object)).to_numpy(dtype=object)
    return pd.Series(_spread(keys, codes), index=names.index, dtype=object)


def _company_keys(names: pd.Series) -> pd.Series:
    text = _text(names).str.lower().str.replace("&", " and ", regex=False)
    text = text.str.replace(r"\b([a-z])\.([a-z])\b", r"\1\2", regex=True)  # s.a. -> sa., n.v. -> nv.
    text = text.str.replace("'", "", regex=False).str.replace(r"[^0-9a-z]+", " ", regex=True)
    text = (" " + text + " ").str.replace(r" and(?: and)* ", " ", regex=True)
    text = text.str.replace(r" +", " ", regex=True).str.strip()
    text = text.str.replace(_LEGAL_TAIL, r"\1", regex=True)
    return _objects(text.where(text != ""))


def _text(values: pd.Series) -> pd.Series:
    """A column as Arrow text (numbers written as text first)."""
    if not pd.api.types.is_string_dtype(values) or values.dtype == object:
        values = values.astype("string")
    return values.astype(pd.ArrowDtype(pa.string()))


def _objects(text: pd.Series) -> pd.Series:
    """Arrow text as Python strings, missing values as None."""
    return pd.Series(text.to_numpy(dtype=object, na_value=None), index=text.index, dtype=object)


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


def matched_line(counts: dict[str, int]) -> str:
    """How the leads were matched, in words (``validate``, ``accounts match``, the account run's
    notes): "matched by id 1, by domain 3, by company 2; unmatched 3 (1 ambiguous)"."""
    c = counts
    return (
        f"matched by id {c['id']:,}, by domain {c['domain']:,}, by company {c['company']:,}; "
        f"unmatched {c['none']:,} ({c['ambiguous']:,} ambiguous)"
    )


def match_leads(leads: pd.DataFrame, accounts: pd.DataFrame, cols: MatchColumns) -> Matches:
    """Every lead of ``leads`` with its account: by its own account column, else email domain,
    else company name (ambiguous domains and names match nobody, and are counted)."""
    account_keys = lead_keys(accounts[cols.account_id])
    known = set(account_keys) - {""}
    n = len(leads)
    found = np.full(n, None, dtype=object)
    method = np.full(n, "none", dtype=object)
    counts = dict.fromkeys(METHODS, 0) | {"ambiguous": 0, "unknown_account": 0, "free_mail": 0}
    if cols.lead_account is not None:
        given_keys = lead_keys(leads[cols.lead_account])
        given = given_keys.to_numpy(dtype=object)
        ok = given_keys.isin(known).to_numpy()  # hashed: np.isin on text compares every pair
        found[ok], method[ok] = given[ok], "id"
        counts["unknown_account"] = int(((given != "") & ~ok).sum())
    ambiguous = np.zeros(n, dtype=bool)
    if cols.email is not None and cols.website is not None:
        codes, domains = email_domain_codes(leads[cols.email])
        free = pd.Index(domains).isin(cols.free_mail)
        counts["free_mail"] = int(free[codes[codes >= 0]].sum())
        index, twice = _unique_index(web_domains(accounts[cols.website]), account_keys)
        hits = np.full(len(domains), None, dtype=object)
        for code in np.unique(codes[(method == "none") & (codes >= 0)]):  # the open leads' domains, once
            hits[code] = None if free[code] else _by_domain(domains[code], index, twice)
        _take(_spread(hits, codes), found, method, ambiguous, "domain")
    if cols.company is not None and cols.name is not None:
        index, twice = _unique_index(company_keys(accounts[cols.name]), account_keys)
        open_ = np.flatnonzero(method == "none")  # the leads still unmatched, each distinct name once
        codes, names = pd.factorize(leads[cols.company].iloc[open_], use_na_sentinel=True)
        keys = _company_keys(pd.Series(np.asarray(names, dtype=object), dtype=object))
        hits = keys.map(index).astype(object).where(~keys.isin(twice), AMBIGUOUS)  # hashed lookups
        values = np.full(n, None, dtype=object)
        values[open_] = _spread(hits.to_numpy(dtype=object), codes)
        _take(values, found, method, ambiguous, "company")
    for m in METHODS:
        counts[m] = int((method == m).sum())
    counts["ambiguous"] = int((ambiguous & (method == "none")).sum())
    frame = pd.DataFrame(
        {
            "lead_id": lead_keys(leads[cols.lead_id]).to_numpy(dtype=object),
            "account_id": found,
            "method": method,
        }
    )
    return Matches(frame, counts)


AMBIGUOUS = "\x00ambiguous"  # a key two accounts share: it matches nobody


def _unique_index(keys: pd.Series, account_ids: pd.Series) -> tuple[dict[str, str], set[str]]:
    """Key -> account for keys exactly one account has; the keys several accounts share."""
    key, ids = keys.to_numpy(dtype=object), account_ids.to_numpy(dtype=object)
    ok = ~pd.isna(key) & (ids != "")
    pairs = pd.DataFrame({"key": key[ok], "id": ids[ok]}, dtype=object).drop_duplicates()
    key, ids = pairs["key"].to_numpy(dtype=object), pairs["id"].to_numpy(dtype=object)
    shared = pairs["key"].duplicated(keep=False).to_numpy()
    return dict(zip(key[~shared], ids[~shared], strict=True)), set(key[shared])


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


def _take(
    values: np.ndarray, found: np.ndarray, method: np.ndarray, ambiguous: np.ndarray, name: str
) -> None:
    """Fill the leads still unmatched from ``values`` (each lead's account key, AMBIGUOUS or None)."""
    open_ = method == "none"
    shared = open_ & (values == AMBIGUOUS)
    ambiguous |= shared
    take = open_ & ~pd.isna(values) & (values != AMBIGUOUS)
    found[take], method[take] = values[take], name


def free_mail_domains(extra: Iterable[str]) -> frozenset[str]:
    """The shipped free-mail domains with a spec's own."""
    return FREE_MAIL | {d.strip().casefold().removeprefix("@") for d in extra if d.strip()}
