"""A spec's reasons templates (``reasons.<field>.<kind>``): which placeholders they may use."""

from __future__ import annotations

import string

REASON_KEYS = ("label", "positive", "negative", "missing", "any")
PLACEHOLDERS = ("value", "n", "s", "label")
MAX_TEMPLATE = 300


def template_problem(kind: str, text: str) -> str | None:
    """Why a reasons template (``reasons.<field>.<kind>``) cannot be used, or None: only the
    documented placeholders, each plain ({value}, {n}, {s}, {label}: no attribute, index, conversion
    or format spec), a label without braces, and at most ``MAX_TEMPLATE`` characters."""
    if kind not in REASON_KEYS:
        return f"unknown key (use {', '.join(REASON_KEYS)})"
    if len(text) > MAX_TEMPLATE:
        return f"longer than {MAX_TEMPLATE} characters"
    if kind == "label":
        return "a label is plain text, without braces" if "{" in text or "}" in text else None
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"unbalanced braces ({exc})"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            return f"'{shown}' is not a placeholder (use {{value}}, {{n}}, {{s}} or {{label}}, as written)"
    return None
