"""Where a lead stands in the lifecycle on a day, from the folder's status history: its latest stage
by then and since when, and whether it is past MQL (a stage the spec's label counts: then there is
no response clock to show)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leadscore.data.folders import declared_table, is_declared_folder
from leadscore.data.history import stage_rows
from leadscore.features.rollups import NAT_MS
from leadscore.features.values import lead_key, lead_keys, to_epoch_ms
from leadscore.spec import DatasetSpec

# Stages after sales' acceptance, as CRMs name them (and any stage the spec's label counts).
SALES_STAGES = frozenset(
    {
        "sal",
        "sales accepted",
        "sales accepted lead",
        "sql",
        "sales qualified",
        "sales qualified lead",
        "opportunity",
        "customer",
        "closed won",
    }
)


@dataclass(frozen=True)
class Stage:
    name: str
    since: str  # YYYY-MM-DD
    past_mql: bool  # sales has it (SAL, SQL, Opportunity, Customer, a label stage): no response clock


def current_stage(data: str | Path, spec: DatasetSpec, lead_id: Any, until_ms: float) -> Stage | None:
    """The lead's latest stage change at or before ``until_ms`` (None without a status history)."""
    log = spec.stages
    if log is None or not is_declared_folder(data, spec):
        return None
    history, source = declared_table(Path(data), spec, "stages", log.columns(), None, None)
    if log.where:
        history = stage_rows(history, log.wanted(), source)
    mine = history.loc[(lead_keys(history[log.id]) == lead_key(lead_id)).to_numpy()]
    when = to_epoch_ms(mine[log.time])
    ok = (when != NAT_MS) & (when <= until_ms)
    if not ok.any():
        return None
    last = int(np.flatnonzero(ok)[np.argmax(when[ok])])
    name = str(mine[log.stage].iloc[last]).strip()
    since = str(np.datetime64(int(when[last]), "ms").astype("datetime64[D]"))
    positive = {s.strip().casefold() for s in spec.label.stages or []}
    reached = {str(v).strip().casefold() for v in mine[log.stage].to_numpy()[ok]}
    past = name.casefold() in SALES_STAGES or bool(reached & positive)
    return Stage(name, since, past)
