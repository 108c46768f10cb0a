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


def folded_stages(column: pd.Series) -> np.ndarray:
    """A status history's stage column as the spec's stages are compared with it: each value trimmed
    and case-folded, once per distinct value; a missing one is ""."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    folded = pd.Series(uniques, dtype=object).astype("string").str.strip().str.casefold().fillna("")
    return np.append(folded.to_numpy(dtype=object), "")[codes]  # missing (-1): the last slot


def require_where(present: Iterable[str], wanted: dict[str, set[str]], source: str) -> None:
    """Each column ``stages.where`` names must be in the history table (one line naming the key)."""
    missing = [col for col in wanted if col not in set(present)]
    if missing:
        raise UserError(f"spec key 'stages.where': no column '{missing[0]}' in {source}")
