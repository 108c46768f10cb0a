"""Champion/challenger: compare on the same recent leads, move the ``champion`` alias, roll back.

Every change records who, when and why as MLflow tags on the model versions, and the registered
model keeps the line of champions (``champion_history``) so a rollback knows where to go back to.
The new champion is exported to ``models/<dataset>/`` for services that load from a folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.metrics import brier_score_loss, roc_auc_score

from leadscore.data.account_table import account_table
from leadscore.data.maturity import matured_labels
from leadscore.data.sources import read_table, resolve_leads_path
from leadscore.errors import UserError
from leadscore.modeling.evaluate import rate_at_volume
from leadscore.scoring.bundle import ModelBundle
from leadscore.spec import MIN_SEGMENT_CLASS  # a segment is judged with this many SQL and non-SQL leads
from leadscore.tracking.champions import (
    CHALLENGER,
    CHAMPION,
    HISTORY_TAG,
    champion_version,
    history,
    now_utc,
    record_champion,
    who,
)
from leadscore.tracking.export import export_version
from leadscore.tracking.loading import load_bundle
from leadscore.tracking.store import client as registry_client
from leadscore.tracking.store import registered_name


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the champion a challenger may be and still be promoted."""

    roc_auc: float = 0.005
    brier: float = 0.002
    mql_sql_rate: float = 0.02


def labelled_leads(data: str | Path, bundle: ModelBundle) -> tuple[pd.DataFrame, np.ndarray]:
    """The recent leads with a known outcome, and that outcome as 0/1."""
    if bundle.spec.account_of is not None:  # an account model: the folder's accounts at their moments
        frame = account_table(data, bundle.spec.account_of).frame
    else:
        frame = read_table(resolve_leads_path(data))
    if bundle.spec.label.column not in frame.columns:
        raise UserError(f"{data}: label column '{bundle.spec.label.column}' is missing (outcomes are needed)")
    y, known = matured_labels(frame, bundle.spec)
    frame = frame[known].reset_index(drop=True)
    y = y[known].astype(int)
    if len(np.unique(y)) < 2:
        raise UserError(f"{data}: the recent leads need both SQL and non-SQL outcomes to compare models")
    return frame, y


def evaluate(
    bundle: ModelBundle, frame: pd.DataFrame, y: np.ndarray, volume: int | None = None
) -> dict[str, float]:
    """ROC AUC, Brier and the MQL->SQL rate at the bundle's own contract threshold; with ``volume``,
    also the SQL rate of its ``volume`` best leads (to compare two models at the same MQL volume)."""
    scored = bundle.score_frame(frame)
    mql = scored.mql
    out = {
        "roc_auc": float(roc_auc_score(y, scored.p_sql)),
        "brier": float(brier_score_loss(y, scored.p_sql)),
        "mql_sql_rate": float(y[mql].mean()) if mql.any() else 0.0,
        "mql_share": float(mql.mean()),
        "mql_count": int(mql.sum()),
        "leads": len(y),
    }
    if volume is not None:
        out["sql_rate_at_champion_volume"] = rate_at_volume(y, scored.p_sql, volume)
    return out


def decide(champion: dict[str, float], challenger: dict[str, float], tol: Tolerance) -> list[str]:
    """Why the challenger is worse beyond tolerance (empty: it may be promoted).

    The MQL->SQL rate is compared at the champion's MQL volume on these leads: each model's own
    threshold gives a different volume, and a rate at a smaller volume is higher by construction.
    """
    worse = []
    if challenger["roc_auc"] < champion["roc_auc"] - tol.roc_auc:
        worse.append(
            f"ROC AUC {challenger['roc_auc']:.4f} is below the champion's {champion['roc_auc']:.4f} "
            f"by more than {tol.roc_auc}"
        )
    if challenger["brier"] > champion["brier"] + tol.brier:
        worse.append(
            f"Brier {challenger['brier']:.4f} is above the champion's {champion['brier']:.4f} by more than {tol.brier}"
        )
    rate = challenger.get("sql_rate_at_champion_volume", challenger["mql_sql_rate"])
    if rate < champion["mql_sql_rate"] - tol.mql_sql_rate:
        worse.append(
            f"MQL->SQL rate {rate:.1%} at the champion's MQL volume is below the champion's "
            f"{champion['mql_sql_rate']:.1%} by more than {tol.mql_sql_rate:.0%}"
        )
    return worse


def compare_segments(
    champion: ModelBundle, challenger: ModelBundle, frame: pd.DataFrame, y: np.ndarray, tol: Tolerance
) -> list[dict[str, Any]]:
    """Champion and challenger on each segment's recent leads (the segments of whichever routes by
    segment, the challenger's first): a challenger worse beyond the tolerances on a large segment
    (at least 40 SQL and 40 non-SQL leads) is refused, naming the segment, even when it is better
    on the whole. Smaller segments are listed, not judged: their figures are mostly noise."""
    routed = challenger if challenger.reader is not None else champion
    if routed.reader is None or routed.meta.segments is None:
        return []
    keys = routed.reader.keys(frame)
    names = {k: m.name for k, m in routed.meta.segments.models.items()}
    rows = []
    for key in sorted({k for k in keys.tolist() if k is not None}, key=lambda k: names.get(k, k)):
        inside = keys == key
        n_sql = int(y[inside].sum())
        n_non = int(inside.sum()) - n_sql
        row: dict[str, Any] = {
            "segment": names.get(key, key),
            "leads": int(inside.sum()),
            "sql": n_sql,
            "worse": [],
        }
        if min(n_sql, n_non) >= MIN_SEGMENT_CLASS:
            sub, y_sub = frame[inside].reset_index(drop=True), y[inside]
            row["champion"] = evaluate(champion, sub, y_sub)
            row["challenger"] = evaluate(challenger, sub, y_sub, volume=int(row["champion"]["mql_count"]))
            row["worse"] = decide(row["champion"], row["challenger"], tol)
            row["judged"] = True
        else:
            row["judged"] = False
            row["note"] = (
                f"not judged: {n_sql} SQL / {n_non} non-SQL recent leads (needs {MIN_SEGMENT_CLASS} of each)"
            )
        rows.append(row)
    return rows


def _client() -> MlflowClient:
    return registry_client()


def _version_of(client: MlflowClient, name: str, ref: str) -> str:
    """A version number from "7", "challenger", "@challenger", "models:/name/7" or "models:/name@alias"."""
    ref = ref.strip()
    if ref.startswith("models:/"):
        ref = ref.rsplit("@", 1)[-1] if "@" in ref else ref.rsplit("/", 1)[-1]
    ref = ref.lstrip("@")
    try:
        if ref.isdigit():
            return str(client.get_model_version(name, ref).version)
        return str(client.get_model_version_by_alias(name, ref).version)
    except MlflowException:
        raise UserError(f"model '{name}' has no version or alias '{ref}'") from None


def promote(
    dataset: str,
    challenger: str,
    data: str | Path | None,
    *,
    tolerance: Tolerance | None = None,
    force: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Compare challenger and champion on the same recent leads; move ``champion`` if not worse."""
    tol = tolerance or Tolerance()
    client = _client()
    name = registered_name(dataset)
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise UserError(f"no registered model '{name}': train one first") from None
    new = _version_of(client, name, challenger)
    current = champion_version(client, name)
    result: dict[str, Any] = {
        "registered_model": name,
        "challenger": new,
        "champion_before": current,
        "tolerance": asdict(tol),
        "forced": bool(force),
    }
    if force is not None and not force.strip():
        raise UserError("--force needs a reason, e.g. --force 'data source changed, champion invalid'")
    if current is not None and current != new:
        if data is None and not force:
            raise UserError("--data: give recent labelled leads to compare the challenger with the champion")
        if data is not None:
            champ_bundle = load_bundle(f"models:/{name}/{current}")
            chall_bundle = load_bundle(f"models:/{name}/{new}")
            frame, y = labelled_leads(data, champ_bundle)
            result["champion"] = evaluate(champ_bundle, frame, y)
            result["challenger_metrics"] = evaluate(
                chall_bundle, frame, y, volume=int(result["champion"]["mql_count"])
            )
            result["worse"] = decide(result["champion"], result["challenger_metrics"], tol)
            result["segments"] = compare_segments(champ_bundle, chall_bundle, frame, y, tol)
            result["worse"] += [
                f"segment {row['segment']}: {why}" for row in result["segments"] for why in row["worse"]
            ]
    worse = result.get("worse", [])
    if worse and not force:
        result.update(promoted=False, champion_after=current)
        return result
    if current == new:
        result.update(promoted=False, champion_after=current, note=f"version {new} is already the champion")
        return result
    because = (
        f"forced: {force}"
        if force
        else ("first champion" if current is None else "not worse than the champion within tolerance")
    )
    record_champion(client, name, new, by=who(by), because=because)
    client.set_registered_model_alias(name, CHALLENGER, new)
    result.update(promoted=True, champion_after=new, because=because)
    result["model_path"] = str(export_version(name, new))
    return result


def rollback(dataset: str, *, reason: str | None = None, by: str | None = None) -> dict[str, Any]:
    """Restore the champion before the current one."""
    client = _client()
    name = registered_name(dataset)
    try:
        line = history(client, name)
    except MlflowException:
        raise UserError(f"no registered model '{name}': train one first") from None
    current = champion_version(client, name)
    if current is None:
        raise UserError(f"'{name}' has no champion to roll back")
    if line and line[-1] == current:
        line = line[:-1]
    if not line:
        raise UserError(f"'{name}' has no earlier champion to roll back to (history: {current} only)")
    previous = line[-1]
    when, person = now_utc(), who(by)
    why = reason or "rollback"
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(line))
    for key, value in {"rolled_back_by": person, "rolled_back_at": when, "rolled_back_because": why}.items():
        client.set_model_version_tag(name, current, key, value)
    for key, value in {"restored_by": person, "restored_at": when, "restored_because": why}.items():
        client.set_model_version_tag(name, previous, key, value)
    path = export_version(name, previous)
    return {
        "registered_model": name,
        "champion_before": current,
        "champion_after": previous,
        "because": why,
        "model_path": str(path),
    }


def describe_champion(dataset: str) -> dict[str, Any]:
    """The champion's version and its who/when/why tags."""
    client = _client()
    name = registered_name(dataset)
    version = champion_version(client, name)
    if version is None:
        return {"registered_model": name, "champion": None}
    tags = client.get_model_version(name, version).tags
    return {
        "registered_model": name,
        "champion": version,
        "tags": dict(tags),
        "history": history(client, name),
    }
