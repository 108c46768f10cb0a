"""Sales' reasons to reject an MQL: the standard five, and a team's own (``reject_reasons``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator

STANDARD_REASONS = ("not ICP", "duplicate", "bad data", "student/research", "competitor")
MAX_REASON_CHARS = 32  # the store's column


def own_reasons(values: list[str]) -> list[str]:
    """A spec's own reasons, spaces tidied: each given once, none a standard reason, each short
    enough for the store."""
    seen = {r.casefold() for r in STANDARD_REASONS}
    out = []
    for i, value in enumerate(values):
        text = " ".join(str(value).split())
        if not text or len(text) > MAX_REASON_CHARS:
            raise ValueError(f"reject_reasons[{i}]: '{text}' must have 1 to {MAX_REASON_CHARS} characters")
        if text.casefold() in seen:
            raise ValueError(f"reject_reasons[{i}]: '{text}' is given twice or is a standard reason")
        seen.add(text.casefold())
        out.append(text)
    return out


OwnReasons = Annotated[list[str], AfterValidator(own_reasons)]


def all_reasons(own: Sequence[str] = ()) -> list[str]:
    """The reasons a rejection may give: the standard five, then the spec's own."""
    return [*STANDARD_REASONS, *own]
