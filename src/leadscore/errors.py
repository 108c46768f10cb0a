"""Errors a user can act on: reported as one line naming the column, field, key or file, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: reported as one line, never as a traceback."""
