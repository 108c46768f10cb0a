"""The training and monitoring runs as one call each (for the CLI, the demo and notebooks alike)."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.config import get_settings
from leadscore.errors import UserError, not_a_date
from leadscore.modeling.backtest import backtest
from leadscore.modeling.options import CAPACITIES, REFIT_SEEDS, TrainOptions
from leadscore.modeling.train import TrainResult, train_model
from leadscore.monitoring.feedback import existing_store, load_store
from leadscore.monitoring.monitor import monitor
from leadscore.monitoring.served import served_frame
from leadscore.reports.artifacts import training_artifacts
from leadscore.reports.html import backtest_report, monitor_report, write_html
from leadscore.scoring.contract import load_contract
from leadscore.spec import DatasetSpec
from leadscore.store.db import store_exists
from leadscore.tracking.lineage import check_spec_lineage
from leadscore.tracking.loading import load_bundle
from leadscore.tracking.runs import log_backtest, log_monitoring, log_training, spec_to_yaml

log = logging.getLogger(__name__)

METRIC_KEYS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "lift_top_decile")
CUTOFF_KEYS = (
    "warnings",  # the contract's rate not kept, or a bar too loose: said plainly
    "threshold",
    "expected_mql_share",
    "expected_sql_rate",
    "expected_recall",
    "points_model_sql_rate_at_same_volume",
    "expected_mql_per_week",
    "contract_version",
    "review_by",
    "measured_on",  # the test leads, or out-of-fold scores of every labelled lead (a finalized model)
)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def train_options(
    cutoff: str | Path = "default",
    *,
    keep: list[str] | None = None,
    capacity: str | None = None,
    seed: int = 42,
    feedback: str | Path | None = None,
    finalize: bool = True,
    sample: int | None = None,
    refit_seeds: int | None = None,
) -> tuple[TrainOptions, Path]:
    """Training options from what a user names: contract, kept columns, shape, seed, feedback store,
    whether the shipped model is refitted on every labelled lead, the sample to train on, and how many
    seeds' fits a cross-fitted final booster averages."""
    contract, contract_path = load_contract(cutoff)
    shapes = {c.name: c for c in CAPACITIES}
    if capacity is not None and capacity not in shapes:
        raise UserError(f"--capacity: unknown shape '{capacity}' (use {', '.join(shapes)})")
    decisions = load_store(existing_store(feedback)) if feedback else None
    options = TrainOptions(
        contract=contract,
        keep=list(keep or []),
        seed=seed,
        capacities=(shapes[capacity],) if capacity else CAPACITIES,
        feedback=decisions,
        feedback_source=str(feedback or ""),
        search_trials=get_settings().search_trials,
        finalize=finalize,
        sample=sample,
        refit_seeds=REFIT_SEEDS if refit_seeds is None else refit_seeds,
    )
    return options, contract_path


def train_and_log(
    data: str | Path,
    spec: DatasetSpec,
    *,
    cutoff: str | Path = "default",
    keep: list[str] | None = None,
    promote: bool = False,
    capacity: str | None = None,
    seed: int = 42,
    feedback: str | Path | None = None,
    finalize: bool = True,
    sample: int | None = None,
    refit_seeds: int | None = None,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train on ``data``, log and register the run, export the model; return the result and a summary."""
    options, contract_path = train_options(
        cutoff,
        keep=keep,
        capacity=capacity,
        seed=seed,
        feedback=feedback,
        finalize=finalize,
        sample=sample,
        refit_seeds=refit_seeds,
    )
    check_spec_lineage(spec)  # before training: a model of other data under this name is refused anyway
    log.info("training on %s (dataset '%s') ...", data, spec.name)
    result = train_model(data, spec, options)
    return result, log_trained(result, data, spec, options, contract_path, promote=promote)


def log_trained(
    result: TrainResult,
    data: str | Path,
    spec: DatasetSpec,
    options: TrainOptions,
    contract_path: Path,
    *,
    promote: bool = False,
) -> dict[str, Any]:
    """Say what a training run found (leaks, notes, the cutoff's warnings), log and register it in
    MLflow, export it; ``train``'s summary."""
    for col in result.leakage_suspects:
        status = "kept (--keep)" if col in options.keep else "excluded"
        log.warning("'%s' looks like a leak and is %s: %s", col, status, result.excluded_columns.get(col, ""))
    for note in result.notes:
        log.info("note: %s", note)
    for warning in result.cutoff.warnings:
        log.warning("cutoff: %s", warning)
    logged = log_training(
        result,
        data,
        spec_to_yaml(spec.model_dump(mode="json")),
        contract_path,
        artifacts=training_artifacts(result),
        promote=promote,
    )
    return summarise(result, logged)


def summarise(result: TrainResult, logged: dict[str, Any]) -> dict[str, Any]:
    """The ``train --json`` object: where the run and model are, metrics against baselines, the cutoff."""
    return {
        "run_id": logged["run_id"],
        "model_uri": logged["model_uri"],
        "model_path": logged["model_path"],
        "model_version": result.bundle.version,
        "registered_model": logged["registered_model"],
        "registered_version": logged["registered_version"],
        "aliases": logged["aliases"],
        "metrics": {k: _finite(result.metrics[k]) for k in METRIC_KEYS},
        "baselines": {name: {k: _finite(m[k]) for k in METRIC_KEYS} for name, m in result.baselines.items()},
        "leakage_suspects": result.leakage_suspects,
        "excluded_columns": result.excluded_columns,
        "cutoff": {k: getattr(result.cutoff, k) for k in CUTOFF_KEYS},
        "n_train": result.n_train,
        "n_test": result.n_test,
        "uncertainty": result.uncertainty,
        "notes": result.notes,
        "label_windows": result.label_windows,  # the export day and the open windows left out
        "segments": logged.get("segments"),  # per segment: its champion, both ROC AUCs, its cutoff
        "time_head": time_head_summary(result.bundle.meta.time_head),
        # the shipped model: every labelled lead (finalized) or the split's training rows, and how
        "learned_from": result.bundle.meta.learned_from,
    }


def time_head_summary(facts: dict[str, Any] | None) -> dict[str, Any] | None:
    """The time-to-SQL head in ``train --json``: its test ECE per horizon, Harrell's C and what it
    learned from (None when the export has no SQL times)."""
    if facts is None:
        return None
    return {
        "ece": {days: _finite(h.get("ece")) for days, h in facts["horizons"].items()},
        "concordance": _finite(facts.get("concordance")),
        "trained_on": facts.get("trained_on"),
        "open_windows_used": facts.get("open_windows_used"),
        "p_sql_90d_vs_p_sql": _finite(facts.get("p_sql_90d_vs_p_sql")),
    }


def monitor_and_report(
    model: str | Path,
    reference: str | Path,
    current: str | Path | None,
    out: str | Path,
    *,
    feedback: str | Path | None = None,
    source: str | None = None,
    log_run: bool = True,
    served_since: datetime | None = None,
) -> dict[str, Any]:
    """Run the monitor, write its HTML report atomically and log the run to MLflow (``leadscore monitor``).

    With ``served_since`` the recent period is what the store's score log says was served since then
    (``current``, if given, adds outcomes from later stages); otherwise ``current`` is a file."""
    bundle = load_bundle(model)
    store = _decisions_or_none(feedback)
    if served_since is not None:
        frame, served = served_frame(bundle.spec, served_since, feedback, outcomes=current)
        name = f"served since {served_since:%Y-%m-%d %H:%M}"
        result = monitor(bundle, reference, frame, feedback=store, source=source, current_name=name)
        result["served"] = served
    elif current is None:
        raise UserError(
            "give --current FILE (recent leads) or --served SINCE (the scores the service logged)"
        )
    else:
        result = monitor(bundle, reference, current, feedback=store, source=source)
    html = monitor_report(bundle, result)
    result["report"] = str(write_html(html, out))
    if log_run:
        result["mlflow_run_id"] = log_monitoring(bundle.name, result, html)
    return result


def _decisions_or_none(feedback: str | Path | None) -> pd.DataFrame | None:
    """The store's decisions for the monitor: the given store's, else the default store's if it has any
    (a default SQLite store that is not there is not created for this)."""
    if feedback is None and not store_exists():
        return None
    decisions = load_store(feedback)
    return decisions if len(decisions) else None


def backtest_and_log(
    data: str | Path,
    spec: DatasetSpec,
    *,
    cutoff: str | Path = "default",
    seed: int = 42,
    every: str = "month",
    start: str | None = None,
    stop: str | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """The month-by-month backtest, logged to MLflow (and written as a page with ``out``)."""
    options, _ = train_options(cutoff, seed=seed)
    result = backtest(
        data, spec, options, every=every, start=_month_flag("--from", start), stop=_month_flag("--to", stop)
    )
    page = backtest_report(result)
    result["mlflow_run_id"] = log_backtest(spec.name, result, page)
    if out is not None:
        result["report"] = str(write_html(page, out))
    return result


def _month_flag(flag: str, value: str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except ValueError:
        raise not_a_date(flag, value) from None
