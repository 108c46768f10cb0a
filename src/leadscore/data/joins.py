"""How a folder's tables join its leads: ids in one form, and a table that joins nothing stopped.

An export whose activity log carries ids as text while the leads' are numbers ("7" against 7)
joined nothing: training went on with every engagement feature zero and registered the model.
The ids are now put in the leads' form where they differ only in form, and a table none of whose
rows joins a lead stops every command (train, score, validate) with one line.
"""

from __future__ import annotations

import pandas as pd

from leadscore.errors import UserError
from leadscore.features.values import lead_key


def joined(table: pd.DataFrame, id_col: str, lead_ids: pd.Series, name: str, kind: str) -> pd.DataFrame:
    """``table`` (a declared table of file ``name``) with its ids in the leads' form; one line when
    none of its rows joins a lead (what ``validate`` says, now said by every command)."""
    ids = ids_like(table[id_col], lead_ids)
    if ids is not table[id_col]:
        table = table.assign(**{id_col: ids})
    known = lead_ids.dropna()
    if len(table) and not ids.iloc[:10_000].isin(known).any() and not ids.isin(known).any():
        raise UserError(f"{name}: {NO_JOIN} '{kind}.id'")
    return table


NO_JOIN = "no row's id matches a lead's id in the leads table: check spec key"


def ids_like(ids: pd.Series, lead_ids: pd.Series) -> pd.Series:
    """``ids`` in the form of the leads' ids where the two differ only in form (numbers against text
    that spells them: 7 and "7", 7.0 and "7"); ``ids`` itself when both are numbers or both text."""
    numbers, lead_numbers = (pd.api.types.is_numeric_dtype(s) for s in (ids, lead_ids))
    if numbers == lead_numbers:
        return ids
    if lead_numbers:  # text ids against numeric leads: read the text as the leads' numbers
        read = pd.to_numeric(ids.astype("string").str.strip(), errors="coerce").astype("float64")
        whole = pd.api.types.is_integer_dtype(lead_ids) and not read.isna().any()
        return read.astype(lead_ids.dtype) if whole and (read == read.round()).all() else read
    return ids.map(lead_key).astype("string")  # numbers against text ids: 7.0 -> "7"
