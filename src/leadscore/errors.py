"""Errors a user can act on: reported as one line naming the column, field, key or file, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: reported as one line, never as a traceback."""


def not_a_date(where: str, value: object, *, date_only: bool = False) -> UserError:
    """The one line for a value that is not a date, whichever flag, key or field gave it."""
    expected = "a date like 2026-11-30" if date_only else "a date like 2026-11-30 or an ISO timestamp"
    return UserError(f"{where}: '{value}' is not a date (expected {expected})")
