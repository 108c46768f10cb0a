"""An export checked as training reads it, for ``leadscore validate`` and the notebooks alike."""

from __future__ import annotations

from pathlib import Path

from leadscore.data.folder_checks import validate_folder
from leadscore.data.folders import is_declared_folder
from leadscore.data.lifecycle import with_scoring_time
from leadscore.data.paths import leads_path
from leadscore.data.sources import ambiguous_message, csv_format_of, read_table
from leadscore.data.validate import ValidationReport, validate_frame
from leadscore.spec import DatasetSpec


def validate_export(path: str | Path, spec: DatasetSpec) -> ValidationReport:
    """A folder of a CRM's tables (each table on its own too) or one file: what validation finds, how
    a CSV's numbers were read (``read_as``) and the columns whose numbers could be read either way."""
    declared = is_declared_folder(path, spec)
    if declared:
        report = validate_folder(Path(path), spec)
    else:
        report = validate_frame(with_scoring_time(read_table(path), spec), spec, source=str(path))
    found = csv_format_of(leads_path(Path(path), spec) if declared else path)
    if found is not None:
        report.read_as = found.describe()
        for column in found.ambiguous:
            report.add("warning", "ambiguous_number", column, 0, ambiguous_message(found))
    return report
