"""Personal and identifying fields: never learned from unless a spec keeps them on purpose.

A flat HubSpot-style export trained with flags learned ``First Name``, ``Last Name`` and ``Company
Name`` as categories (and lost to logistic regression, without a word). Names, emails, phone
numbers, street addresses, web addresses and free-text company names say who the lead is, not
whether they will buy; a model that learns them memorises people and leaks personal data into its
reasons. They are found by the column's name and, for phone numbers and web addresses, by its
values, and left out with the reason; a spec that lists one in ``fit`` keeps it.
"""

from __future__ import annotations

import re

import pandas as pd

_WORDS = re.compile(r"[^a-z0-9]+")
_PERSON = {
    "name", "first name", "last name", "full name", "middle name", "given name", "family name",
    "surname", "firstname", "lastname", "fullname", "contact name", "lead name", "contact",
}  # fmt: skip
_COMPANY = {
    "company", "company name", "account name", "organization", "organisation", "organization name",
    "organisation name", "employer", "business name", "account",
}  # fmt: skip
_ADDRESS = {
    "street",
    "street address",
    "address",
    "address line 1",
    "address line 2",
    "address 1",
    "address 2",
}
_CONTACT_WORDS = {"phone", "mobile", "telephone", "fax", "cell", "whatsapp"}
_WEB = {"website", "web site", "url", "linkedin", "linkedin url", "twitter", "ip", "ip address", "homepage"}
_PHONE = re.compile(r"^\+?[\d\s().\-/]{7,}$")
_URL = re.compile(r"^(https?://|www\.)", re.IGNORECASE)


def personal_reason(column: str, series: pd.Series) -> str | None:
    """Why a column is personal or identifying data, or None."""
    name = _WORDS.sub(" ", str(column).casefold()).strip()
    words = set(name.split())
    if name in _PERSON or name.endswith((" first name", " last name", " full name")):
        return "personal data: a person's name"
    if name in _COMPANY:
        return "identifies the company by name (free text): its fields (industry, size) are the features"
    if name in _ADDRESS or name.startswith("street"):
        return "personal data: a street address"
    if words & _CONTACT_WORDS:
        return "personal data: a phone number"
    if name in _WEB:
        return "identifies the lead or company: a web or network address"
    return _by_values(series)


def _text_sample(series: pd.Series) -> pd.Series | None:
    """The first rows' filled values of a text column, trimmed (None for numbers and times): a sample,
    as every column of an export is looked at."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
        return None
    text = series.head(5000).dropna().astype("string").str.strip()
    return text[text != ""]


def _by_values(series: pd.Series) -> str | None:
    text = _text_sample(series)
    if text is None or len(text) < 20:
        return None
    digits = text.str.count(r"\d")
    if (text.str.match(_PHONE.pattern) & (digits >= 7)).mean() > 0.5:
        return "personal data: phone numbers"
    if text.str.match(_URL.pattern).mean() > 0.5:
        return "identifies the lead or company: web addresses"
    return None


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email_column(frame: pd.DataFrame, declared: str | None) -> str | None:
    """The contact's email column: the one a spec names, else the first column whose values are
    mostly email addresses (so repeated contacts are found in an export trained with flags too)."""
    if declared:
        return declared if declared in frame.columns else None
    for column in frame.columns:
        text = _text_sample(frame[column])
        if text is not None and len(text) >= 20 and text.str.match(_EMAIL.pattern).mean() > 0.8:
            return str(column)
    return None


def unusable_reason(series: pd.Series, n: int) -> str | None:
    """Why a column without a spec cannot be learned from (constant, an identifier, an email), or None."""
    distinct = series.nunique(dropna=True)
    if distinct <= 1:
        return "constant (carries no information)"
    textual = not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_datetime64_any_dtype(series)
    integral = pd.api.types.is_integer_dtype(series)
    if (textual or integral) and distinct >= 0.98 * series.notna().sum() and n >= 50:
        return "identifier-like (a different value for almost every lead)"
    if textual and series.astype(str).str.contains("@", regex=False).mean() > 0.5:
        return "email address (personal data)"
    return None
