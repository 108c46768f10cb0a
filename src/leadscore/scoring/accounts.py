"""An account model's batch scores: every account with activity, as of one moment, with its
P(opportunity), whether it is a qualified account (over the contract's account cutoff), its grade,
reasons, and its buying group: people engaged in the last 30 days, roles engaged and roles missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.account_table import ACCOUNT_ID, MOMENT, ROW, AccountTable, account_table
from leadscore.data.sources import write_frame
from leadscore.errors import UserError
from leadscore.features.accounts import AccountActivity, AccountRollups
from leadscore.features.values import lead_keys
from leadscore.scoring.batch import score_output
from leadscore.scoring.bundle import ModelBundle
from leadscore.spec import AccountAggregation, DatasetSpec

ENGAGED_DAYS = 30  # "engaged": an event in the last 30 days


def account_scores(
    bundle: ModelBundle,
    folder: str | Path,
    as_of_ms: float,
    explain: int = 0,
    table: AccountTable | None = None,
) -> pd.DataFrame:
    """One row per account with activity by ``as_of_ms``: ``account_id``, ``p_opportunity``,
    ``qualified``, ``grade``, reasons, ``contacts_engaged``, ``roles_engaged``, ``roles_missing``."""
    spec = bundle.spec.account_of
    assert spec is not None
    table = table if table is not None else account_table(folder, spec, as_of=as_of_ms)
    return scores_of(bundle, table.frame, table.activity, int(as_of_ms), explain)


def scores_of(
    bundle: ModelBundle, frame: pd.DataFrame, activity: AccountActivity, moment: int, explain: int = 0
) -> pd.DataFrame:
    """The accounts of ``frame`` (at ``moment``; ``ROW``: their rows in ``activity``) scored, with their buying group."""
    spec = bundle.spec.account_of
    assert spec is not None
    scored = score_output(bundle, frame, explain)
    out = pd.DataFrame(
        {
            ACCOUNT_ID: frame[ACCOUNT_ID].to_numpy(dtype=object),
            "scored_at": frame[MOMENT].to_numpy(),
            "p_opportunity": scored["p_sql"].to_numpy(),
            "qualified": scored["mql"].to_numpy(),
            "grade": scored["grade"].to_numpy(),
        }
    )
    for k in range(explain):
        out[f"reason_{k + 1}"] = scored[f"reason_{k + 1}"].to_numpy()
    group = buying_group(activity, frame[ROW].to_numpy(), spec, moment)
    return pd.concat([out, group.reset_index(drop=True)], axis=1)


def as_written(scores: pd.DataFrame) -> pd.DataFrame:
    """The scores as the file holds them: ``scored_at`` as ISO 8601 text in UTC."""
    return scores.assign(scored_at=pd.to_datetime(scores["scored_at"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))


def buying_group(activity: AccountActivity, rows: np.ndarray, spec: DatasetSpec, moment: int) -> pd.DataFrame:
    """Each scored account's people engaged in the last ``ENGAGED_DAYS`` days, and its declared
    roles engaged and missing (comma-separated, in the spec's order)."""
    acc = spec.accounts
    assert acc is not None
    definitions = {"contacts": AccountAggregation(contacts="any", days=ENGAGED_DAYS)}
    definitions |= {
        f"role:{role}": AccountAggregation(contacts="any", role=role, days=ENGAGED_DAYS) for role in acc.roles
    }
    values = AccountRollups(activity, definitions).at(moment)  # every log: any activity counts
    engaged = {role: values[f"role:{role}"].to_numpy()[rows] > 0 for role in acc.roles}
    return pd.DataFrame(
        {
            "contacts_engaged": values["contacts"].to_numpy()[rows].astype(np.int64),
            "roles_engaged": _joined(engaged, rows, True),
            "roles_missing": _joined(engaged, rows, False),
        }
    )


def _joined(engaged: dict[str, np.ndarray], rows: np.ndarray, held: bool) -> np.ndarray:
    out = np.full(len(rows), "", dtype=object)
    for role, mask in engaged.items():
        hit = mask == held
        out[hit] = np.where(out[hit] == "", role, out[hit] + ", " + role)
    return out


def score_accounts_file(
    bundle: ModelBundle, folder: str | Path, out: str | Path, as_of_ms: float, explain: int = 0
) -> dict[str, Any]:
    """``account_scores`` written to ``out`` (.csv or .parquet) atomically; the run's summary."""
    out = Path(out)
    if out.suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise UserError(f"{out}: output must end in .csv or .parquet")
    scores = as_written(account_scores(bundle, folder, as_of_ms, explain))
    write_frame(scores, out)
    qualified = int(scores["qualified"].sum())
    return {
        "out": str(out),
        "rows": len(scores),
        "qualified": qualified,
        "qualified_share": qualified / len(scores) if len(scores) else 0.0,
        "model_version": bundle.version,
        "as_of": pd.Timestamp(int(as_of_ms), unit="ms").isoformat(),
    }


def lead_accounts(
    accounts_bundle: ModelBundle, folder: str | Path, id_column: str, as_of_ms: float
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """For lead scoring with an account model: a function adding each scored lead's ``account_id``
    (as the matcher finds it) and its account's ``p_opportunity`` as of ``as_of_ms``."""
    if not Path(folder).is_dir():
        raise UserError(f"--accounts-model: {folder} is not a data folder (the accounts are read from one)")
    spec = accounts_bundle.spec.account_of
    assert spec is not None
    table = account_table(folder, spec, as_of=as_of_ms)
    scored = score_output(accounts_bundle, table.frame)
    p_of = dict(zip(table.frame[ACCOUNT_ID], scored["p_sql"], strict=True))
    matches = table.tables.matches.frame
    account_of = dict(zip(matches["lead_id"], matches["account_id"], strict=True))

    def extend(frame: pd.DataFrame) -> pd.DataFrame:
        keys = lead_keys(frame[id_column])
        account = keys.map(account_of)
        return frame.assign(
            account_id=account.to_numpy(dtype=object), p_opportunity=account.map(p_of).to_numpy(dtype=float)
        )

    return extend
