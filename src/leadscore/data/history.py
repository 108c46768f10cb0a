"""A status history read through the spec: which of its rows are stage changes (``stages.where``).

A history of every field, as Salesforce's ``LeadHistory``, has a row for each field's change; only
the rows whose columns hold the spec's values (``where: {Field: Status}``) are stage changes. The
pandas path filters here; the Spark path checks the same columns with ``require_where``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from leadscore.errors import UserError


def stage_rows(table: pd.DataFrame, wanted: dict[str, set[str]], source: str) -> pd.DataFrame:
    """The rows of a history table that are stage changes (``stages.where``: column -> values)."""
    require_where(table.columns, wanted, source)
    keep = np.ones(len(table), dtype=bool)
    for col, values in wanted.items():
        folded = table[col].astype("string").str.strip().str.casefold()
        keep &= folded.isin(values).fillna(False).to_numpy(dtype=bool)
    if not keep.any():
        raise UserError(f"spec key 'stages.where': no row of {source} matches it")
    return table.loc[keep].reset_index(drop=True)


def require_where(present: Iterable[str], wanted: dict[str, set[str]], source: str) -> None:
    """Each column ``stages.where`` names must be in the history table (one line naming the key)."""
    missing = [col for col in wanted if col not in set(present)]
    if missing:
        raise UserError(f"spec key 'stages.where': no column '{missing[0]}' in {source}")
