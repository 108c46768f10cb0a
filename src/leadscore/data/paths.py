"""Where a data folder's tables are: the leads table a spec names."""

from __future__ import annotations

from pathlib import Path

from leadscore.data.sources import find_table
from leadscore.errors import UserError
from leadscore.spec import DatasetSpec


def leads_path(folder: Path, spec: DatasetSpec) -> Path:
    """The leads table of a folder (``tables: {leads: ...}`` names its file stem)."""
    stem = spec.table("leads")
    found = find_table(folder, stem)
    if found is None:
        raise UserError(f"{folder}: no '{stem}' table (.csv or .parquet) for spec key 'tables.leads'")
    return found
