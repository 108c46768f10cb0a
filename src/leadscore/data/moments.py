"""Several scoring moments per lead (``moments: {stages: [MQL]}``): every entry into one of those
stages, read from the status history, is a moment of its own.

A lead recycled and qualified again is scored again: for training each moment is a row, with the
lead's id made ``<id>#<n>`` (its n-th moment) and its scoring time set to the moment, and the
activity log and the status history copied for each moment under that id, so every later step
(point-in-time features, the label counted from the moment, its time to SQL) reads one row as one
lead, unchanged. The lead's own id stays in ``MOMENT_OF``: the split keeps all moments of a lead on
one side, and repeated contacts are counted per lead. For scoring, a lead is scored at its latest
moment under its own id (a lead never at one of those stages keeps its ``time``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.history import folded_stages
from leadscore.features.values import lead_keys, to_epoch_ms
from leadscore.spec import DatasetSpec

MOMENT_OF = "__moment_of"  # the lead's own id, beside its moment's id
MOMENT_NO = "__moment_no"  # 1 for a lead's first moment, 2 for the next ...
_KEY = "__lead_key"


def moment_table(frame: pd.DataFrame, history: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Every moment of the leads of ``frame``: the lead's key, its number, its time (epoch ms) and its
    row id, oldest first per lead."""
    assert spec.moments is not None and spec.stages is not None and spec.id
    log = spec.stages
    wanted = {s.strip().casefold() for s in spec.moments.stages}
    stage = pd.Series(folded_stages(history[log.stage]))
    entries = pd.DataFrame(
        {
            "key": lead_keys(history[log.id]).to_numpy(dtype=object),
            "t": to_epoch_ms(history[log.time]),
        }
    ).loc[stage.isin(wanted).to_numpy()]
    known = set(lead_keys(frame[spec.id]).dropna())
    entries = entries.loc[entries["key"].isin(known) & (entries["t"] != np.iinfo(np.int64).min)]
    entries = entries.sort_values(["key", "t"], kind="stable").drop_duplicates(["key", "t"])
    entries["number"] = entries.groupby("key").cumcount() + 1
    entries["row_id"] = entries["key"].astype(str) + "#" + entries["number"].astype(str)
    return entries.reset_index(drop=True)


def leads_at_moments(frame: pd.DataFrame, moments: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """One row per moment (leads without one are not scored at any): the moment's id and time."""
    assert spec.id and spec.time
    keyed = frame.assign(**{_KEY: lead_keys(frame[spec.id]).to_numpy(dtype=object)})
    out = keyed.merge(moments, left_on=_KEY, right_on="key", how="inner", sort=False)
    out[MOMENT_OF] = out[spec.id]
    out[MOMENT_NO] = out["number"].astype(int)
    out[spec.id] = out["row_id"]
    out[spec.time] = pd.to_datetime(out["t"], unit="ms")
    return out.drop(columns=[_KEY, "key", "t", "number", "row_id"]).reset_index(drop=True)


def latest_moment(frame: pd.DataFrame, moments: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Each lead under its own id, scored at its latest moment (a lead without one keeps its time)."""
    assert spec.id and spec.time
    last = moments.drop_duplicates("key", keep="last").set_index("key")["t"]
    at = lead_keys(frame[spec.id]).map(last)
    out = frame.copy()
    when = pd.to_datetime(at, unit="ms")
    if spec.time in out.columns:
        own = pd.Series(out[spec.time].to_numpy(dtype=object), index=out.index)
        out[spec.time] = when.astype(object).where(at.notna(), own)
    else:
        out[spec.time] = when
    return out


def table_at_moments(table: pd.DataFrame, id_col: str, moments: pd.DataFrame) -> pd.DataFrame:
    """A declared table's rows copied for each moment of their lead, under the moment's id (rows of
    leads without a moment are not read)."""
    keyed = table.assign(**{_KEY: lead_keys(table[id_col]).to_numpy(dtype=object)})
    out = keyed.merge(moments[["key", "row_id"]], left_on=_KEY, right_on="key", how="inner", sort=False)
    out[id_col] = out["row_id"]
    return out.drop(columns=[_KEY, "key", "row_id"]).reset_index(drop=True)


def first_moments(frame: pd.DataFrame) -> np.ndarray:
    """Rows that are a lead's first moment (every row without moments): one per lead."""
    if MOMENT_NO not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return (frame[MOMENT_NO].to_numpy() == 1) | frame[MOMENT_NO].isna().to_numpy()
