"""Scores back into the CRM: a batch score file as the CRM's own bulk import file.

- Salesforce: a Bulk API 2.0 upsert/update CSV (UTF-8, comma, LF line endings, a header of field
  API names, ``Id`` first, ``true``/``false``, date-times as ``yyyy-MM-ddTHH:mm:ss.SSSZ``, empty
  cells left unchanged by the job, text cut to the field's length with the cut said).
- HubSpot: a contacts import CSV (``Record ID`` first, property internal names as headers,
  ``true``/``false``, dates as ``YYYY-MM-DD``: choose "Year-Month-Day" when importing).

What goes where is the spec's ``writeback:`` mapping (score column -> CRM field) over the shipped
defaults below; the score columns are those ``leadscore score`` writes, with ``reasons`` the
numbered reasons joined, and ``scored_at`` and ``model_version`` given by the caller.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.sources import atomic_path
from leadscore.errors import UserError
from leadscore.features.values import flag_of, is_missing, lead_key
from leadscore.spec import DatasetSpec, WritebackTarget
from leadscore.store.db import Store
from leadscore.store.writebacks import last_written, record_written

TARGETS = ("salesforce", "hubspot")
DEFAULTS: dict[str, WritebackTarget] = {
    "salesforce": WritebackTarget(
        object="Lead",
        id="Id",
        fields={
            "p_sql": "Lead_Score__c",
            "grade": "Lead_Grade__c",
            "mql": "MQL__c",
            "reasons": "Score_Reasons__c",
            "trend": "Score_Trend__c",
            "scored_at": "Score_Date__c",
            "model_version": "Score_Model__c",
        },
        lengths={"reasons": 255, "grade": 255, "trend": 255, "model_version": 255},
    ),
    "hubspot": WritebackTarget(
        object="contacts",
        id="Record ID",
        fields={
            "p_sql": "leadscore_p_sql",
            "grade": "leadscore_grade",
            "mql": "leadscore_mql",
            "reasons": "leadscore_reasons",
            "trend": "leadscore_trend",
            "scored_at": "leadscore_scored_at",
            "model_version": "leadscore_model_version",
        },
        lengths={"reasons": 65_536, "grade": 65_536, "trend": 65_536, "model_version": 65_536},
    ),
}
REASON_SEPARATOR = "; "
# The score file's columns a CRM field can take as written; ``reasons``, ``scored_at`` and
# ``model_version`` are made here.
SCORE_COLUMNS = ("p_sql", "mql", "grade", "trend", "p_sql_7d", "p_sql_30d", "expected_days_to_sql")
_KNOWN = {*SCORE_COLUMNS, "reasons", "scored_at", "model_version", "card_url"}
# The field a lead's signed card link goes to (``writeback --card-links``), unless the spec maps
# ``card_url`` itself: a URL field the CRM's lead page frames (docs/pages.md).
CARD_FIELDS = {"salesforce": "Leadscore_Card__c", "hubspot": "leadscore_card"}


@dataclass(frozen=True)
class Written:
    """What a write-back file holds: its rows, its CRM fields and what was cut or left out."""

    out: Path
    rows: int
    fields: list[str]
    warnings: list[str]


def target(spec: DatasetSpec | None, crm: str) -> WritebackTarget:
    """The spec's mapping for ``crm`` over the shipped defaults (its ``fields`` replace them whole)."""
    if crm not in TARGETS:
        raise UserError(f"--to: '{crm}' is not a CRM leadscore writes for (use: {', '.join(TARGETS)})")
    base = DEFAULTS[crm]
    own = spec.writeback.get(crm) if spec is not None else None
    if own is None:
        return base
    return WritebackTarget(
        object=own.object or base.object,
        id=own.id or base.id,
        fields=own.fields or base.fields,
        lengths={**base.lengths, **own.lengths},
    )


def score_values(scores: pd.DataFrame, scored_at: datetime, model_version: str | None) -> pd.DataFrame:
    """The score file's columns a CRM can take: the lead id first, ``reasons`` joined, and the time
    and model of the scoring."""
    if "p_sql" not in scores.columns or len(scores.columns) < 2:
        raise UserError("SCORES: no column 'p_sql': not a file written by leadscore score")
    out = pd.DataFrame({"lead_id": scores.iloc[:, 0]})
    for col in SCORE_COLUMNS:
        if col in scores.columns:
            out[col] = scores[col]
    if "mql" in out.columns:  # True / False as written, or already booleans
        out["mql"] = [flag_of(v) for v in out["mql"]]
    reasons = [c for c in scores.columns if c.startswith("reason_")]
    if reasons:
        parts = scores[reasons].astype(object).where(scores[reasons].notna(), None)
        out["reasons"] = [
            REASON_SEPARATOR.join(str(r) for r in row if r not in (None, ""))
            for row in parts.itertuples(False)
        ]
    out["scored_at"] = scored_at
    if model_version is not None:
        out["model_version"] = model_version
    return out


def logged_values(log: pd.DataFrame) -> pd.DataFrame:
    """The store's logged answers (``served_scores``, oldest first) as write-back values: each answer
    with its own time and model version; its reasons are the fields it named (the log keeps no text)."""
    out = pd.DataFrame(
        {
            "lead_id": log["lead_id"].astype(object).to_numpy(),
            "p_sql": log["p_sql"].astype(float).to_numpy(),
            "mql": [bool(v) for v in log["mql"]],
            "grade": log["grade"].astype(object).to_numpy(),
            "reasons": [REASON_SEPARATOR.join(_fields(r)) for r in log["reasons"]],
            "scored_at": pd.to_datetime(log["scored_at"]).dt.tz_localize(None).to_numpy(),
            "model_version": log["model_version"].astype(object).to_numpy(),
        }
    )
    return out


def _fields(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    named = json.loads(value) if isinstance(value, str) else value
    return [str(v) for v in named]


def write_back(
    scores: pd.DataFrame,
    crm: str,
    out: str | Path,
    spec: DatasetSpec | None,
    *,
    scored_at: datetime,
    model_version: str | None,
    changed_only: Store | None = None,
    step: float = 0.02,
) -> Written:
    """Write the CRM's import file for ``scores`` (a ``leadscore score`` output) atomically; with
    ``changed_only`` (the store), only leads whose MQL flag or grade changed, or whose P(SQL) moved by
    more than ``step``, since the last write to this CRM, which the store then remembers."""
    values = score_values(scores, scored_at, model_version)
    return write_values(values, crm, out, spec, changed_only=changed_only, step=step)


def write_values(
    values: pd.DataFrame,
    crm: str,
    out: str | Path,
    spec: DatasetSpec | None,
    *,
    changed_only: Store | None = None,
    step: float = 0.02,
    card_links: Callable[[str], str] | None = None,
) -> Written:
    """The CRM's import file for write-back ``values`` (``score_values`` or ``logged_values``): a lead
    given twice is written once, with its last values. ``card_links``: each lead's signed card link
    goes to ``card_url``'s field too."""
    mapping = target(spec, crm)
    wanted = dict(mapping.fields)
    if card_links is not None:
        wanted.setdefault("card_url", CARD_FIELDS[crm])
        values = values.assign(card_url=[card_links(lead_key(v)) for v in values["lead_id"]])
    unknown = [col for col in wanted if col not in _KNOWN]
    if unknown:
        raise UserError(
            f"spec key 'writeback.{crm}.fields': '{unknown[0]}' is not a score column "
            f"(use: {', '.join(sorted(_KNOWN))})"
        )
    warnings = [
        f"'{col}' is not in the scores: {wanted[col]} is left out" for col in wanted if col not in values
    ]
    values = _one_row_per_lead(values, warnings)
    if changed_only is not None:
        values = values.loc[
            changed(values, last_written(changed_only, crm, values["lead_id"].tolist()), step)
        ]
    kept = [col for col in wanted if col in values]
    rows = [values["lead_id"].tolist()]
    for col in kept:
        cells = [_cell(v, crm) for v in values[col]]
        limit = mapping.lengths.get(col)
        if limit is not None:
            cut = sum(len(c) > limit for c in cells)
            if cut:
                warnings.append(f"{wanted[col]}: {cut} values cut to {limit} characters (the field's length)")
                cells = [c[:limit] for c in cells]
        rows.append(cells)
    header = [mapping.id or "Id", *(wanted[col] for col in kept)]
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(zip(*rows, strict=True))
    if changed_only is not None and len(values):  # after the file is in place: a lost file is rewritten
        now = datetime.now(UTC).replace(tzinfo=None)
        record_written(changed_only, crm, values.reindex(columns=["lead_id", "p_sql", "mql", "grade"]), now)
    return Written(Path(out), len(values), header, warnings)


def changed(values: pd.DataFrame, last: pd.DataFrame, step: float) -> np.ndarray:
    """Which leads to write again: never written, or their MQL flag or grade changed, or their
    P(SQL) moved by more than ``step`` since the last write."""
    before = last.reindex(values["lead_id"].to_numpy())
    new = before["p_sql"].isna().to_numpy()
    moved = np.abs(values["p_sql"].to_numpy(dtype=float) - before["p_sql"].to_numpy(dtype=float)) > step
    flag = values["mql"].to_numpy(dtype=object) != before["mql"].to_numpy(dtype=object)
    grade = (
        values["grade"].astype(object).to_numpy() != before["grade"].astype(object).to_numpy()
        if "grade" in values
        else np.zeros(len(values), dtype=bool)
    )
    return np.asarray(new | moved | flag | grade, dtype=bool)


def _one_row_per_lead(values: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """A CRM record takes one value: a lead scored twice in the file keeps its last score."""
    values = values.assign(lead_id=[lead_key(v) for v in values["lead_id"]])  # as the store keys it
    repeated = values["lead_id"].duplicated(keep="last")
    if repeated.any():
        warnings.append(
            f"{int(repeated.sum())} leads appear more than once: the last score of each is written"
        )
    return values.loc[~repeated].reset_index(drop=True)


def _cell(value: Any, crm: str) -> str:
    """One value as the CRM's import reads it; an empty cell leaves the CRM's field as it was."""
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        stamp = value.astimezone(UTC) if value.tzinfo else value
        if crm == "hubspot":
            return stamp.strftime("%Y-%m-%d")
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)
