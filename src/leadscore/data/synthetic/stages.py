"""The lifecycle: each lead's status history, the label it implies, and sales' feedback on MQLs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.data.synthetic.tables import ts_array
from leadscore.data.synthetic.vocab import DAY_MS, DISQUALIFY_REASONS, REPS


def draw_stage_history(
    rng: np.random.Generator,
    n: int,
    created: np.ndarray,
    scored: np.ndarray,
    positive: np.ndarray,
    hot: np.ndarray,
) -> dict[str, np.ndarray]:
    rows_lead: list[np.ndarray] = []
    rows_stage: list[str] = []
    rows_stage_idx: list[np.ndarray] = []
    rows_ts: list[np.ndarray] = []
    rows_reason: list[np.ndarray] = []
    stage_names: list[str] = []

    def add(idx: np.ndarray, stage: str, ts: np.ndarray, reason: np.ndarray | None = None) -> None:
        if stage not in stage_names:
            stage_names.append(stage)
        rows_lead.append(idx)
        rows_stage.append(stage)
        rows_stage_idx.append(np.full(idx.size, stage_names.index(stage), dtype=np.int8))
        rows_ts.append(ts)
        rows_reason.append(reason if reason is not None else np.full(idx.size, -1, dtype=np.int8))

    all_idx = np.arange(n)
    add(all_idx, "Inquiry", created)

    def days(lo: float, hi: float, k: int) -> np.ndarray:
        return (rng.uniform(lo, hi, k) * DAY_MS).astype(np.int64)

    mql = positive | (rng.random(n) < 0.15 + 0.45 * hot)
    mql_idx = all_idx[mql]
    add(mql_idx, "MQL", scored[mql_idx])
    pos_idx = all_idx[positive]
    sal_t = scored[pos_idx] + days(0.05, 5, pos_idx.size)
    add(pos_idx, "SAL", sal_t)
    sql_t = np.minimum(sal_t + days(0.2, 60, pos_idx.size), scored[pos_idx] + 89 * DAY_MS)
    add(pos_idx, "SQL", sql_t)
    back = rng.random(pos_idx.size) < 0.05  # sent back by sales, later accepted again
    add(pos_idx[back], "SAL", sql_t[back] + days(1, 5, int(back.sum())))
    opp = rng.random(pos_idx.size) < 0.6
    opp_t = sql_t + days(2, 30, pos_idx.size)
    add(pos_idx[opp], "Opportunity", opp_t[opp])
    won = opp & (rng.random(pos_idx.size) < 0.35)
    add(pos_idx[won], "Customer", opp_t[won] + days(10, 120, pos_idx.size)[won])

    neg_mql = all_idx[mql & ~positive]
    draw = rng.random(neg_mql.size)
    recycled = neg_mql[draw < 0.35]
    disq = neg_mql[(draw >= 0.35) & (draw < 0.85)]
    rec_t = scored[recycled] + days(5, 40, recycled.size)
    add(recycled, "Recycled", rec_t)
    again = rng.random(recycled.size) < 0.4  # backward move: recycled, nurtured, MQL again
    re_idx = recycled[again]
    re_t = rec_t[again] + days(20, 60, re_idx.size)
    add(re_idx, "Inquiry", re_t)
    late = rng.random(re_idx.size) < 0.3  # reaches SQL, but after the 90-day window
    late_idx = re_idx[late]
    late_t = np.maximum(re_t[late], scored[late_idx] + 91 * DAY_MS) + days(1, 60, late_idx.size)
    add(late_idx, "MQL", late_t)
    add(late_idx, "SQL", late_t + days(1, 10, late_idx.size))
    reason = rng.choice(len(DISQUALIFY_REASONS), size=disq.size, p=[0.42, 0.12, 0.16, 0.18, 0.12])
    add(disq, "Disqualified", scored[disq] + days(0.1, 10, disq.size), reason.astype(np.int8))
    return {
        "lead": np.concatenate(rows_lead),
        "stage": np.concatenate(rows_stage_idx),
        "stage_names": np.array(stage_names, dtype=object),
        "ts": np.concatenate(rows_ts),
        "reason": np.concatenate(rows_reason),
    }


def label_from_stages(
    stages: pd.DataFrame,
    anchors: pd.DataFrame,
    *,
    reached: tuple[str, ...] = ("SQL",),
    within_days: int = 90,
    id_col: str = "lead_id",
    time_col: str = "scored_at",
) -> np.ndarray:
    """1 where the lead entered one of ``reached`` within ``within_days`` of its scoring time."""
    ids = pd.Index(anchors[id_col].to_numpy())
    pos = ids.get_indexer(stages[id_col].to_numpy())
    anchor_t = anchors[time_col].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    entered = stages["entered_at"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    is_stage = stages["stage"].astype(str).isin(reached).to_numpy()
    ok = (pos >= 0) & is_stage
    delta = entered[ok] - anchor_t[pos[ok]]
    hit = (delta >= 0) & (delta <= within_days * DAY_MS)
    label = np.zeros(len(anchors), dtype=np.int8)
    label[pos[ok][hit]] = 1
    return label


def feedback_from_stages(stage_table: pa.Table) -> pa.Table:
    """What the CRM would export as sales feedback: each MQL accepted (SAL) or rejected with a reason.

    Derived from the stage history without new random draws, so adding it changed no other table.
    """
    st = stage_table.to_pandas()
    st["stage"] = st["stage"].astype(str)
    first_mql = (
        st[st["stage"] == "MQL"].groupby("lead_id", sort=True, as_index=False)["entered_at"].min()
    ).rename(columns={"entered_at": "mql_at"})
    decided = st[st["stage"].isin(["SAL", "Disqualified"])].merge(first_mql, on="lead_id")
    decided = decided[decided["entered_at"] >= decided["mql_at"]]
    decided = decided.sort_values(["lead_id", "entered_at"], kind="stable").drop_duplicates("lead_id")
    accepted = (decided["stage"] == "SAL").to_numpy()
    reason = decided["reason"].astype(object).where(~accepted, None)
    ids = decided["lead_id"].to_numpy()
    return pa.table(
        {
            "lead_id": pa.array(ids),
            "decision": pa.array(np.where(accepted, "accepted", "rejected").astype(object), type=pa.string()),
            "reason": pa.array(reason.to_numpy(dtype=object), type=pa.string()),
            "mql_at": ts_array(decided["mql_at"].to_numpy(dtype="datetime64[ms]").astype(np.int64)),
            "decided_at": ts_array(decided["entered_at"].to_numpy(dtype="datetime64[ms]").astype(np.int64)),
            "rep": pa.array(np.array(REPS, dtype=object)[ids % len(REPS)], type=pa.string()),
        }
    )
