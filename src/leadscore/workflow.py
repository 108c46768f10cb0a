"""The training run as one call (for the CLI and notebooks alike): train, log to MLflow, register, export."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from leadscore._cli_util import info
from leadscore.config import DatasetSpec, UserError, get_settings

METRIC_KEYS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "lift_top_decile")
CUTOFF_KEYS = (
    "threshold",
    "expected_mql_share",
    "expected_sql_rate",
    "expected_recall",
    "points_model_sql_rate_at_same_volume",
    "expected_mql_per_week",
    "contract_version",
    "review_by",
)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


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
) -> tuple[Any, dict[str, Any]]:
    """Train on ``data``, log and register the run, export the model; return the result and a summary."""
    from leadscore.modeling.cutoff import load_contract
    from leadscore.modeling.train import CAPACITIES, TrainOptions
    from leadscore.modeling.train import train as run_training
    from leadscore.registry import log_training, spec_to_yaml

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    contract, contract_path = load_contract(cutoff)
    shapes = {c.name: c for c in CAPACITIES}
    if capacity is not None and capacity not in shapes:
        raise UserError(f"--capacity: unknown shape '{capacity}' (use {', '.join(shapes)})")
    options = TrainOptions(
        contract=contract,
        keep=list(keep or []),
        seed=seed,
        num_threads=get_settings().num_threads,
        capacities=(shapes[capacity],) if capacity else CAPACITIES,
        feedback=str(feedback) if feedback else None,
    )
    info(f"training on {data} (dataset '{spec.name}') ...")
    result = run_training(data, spec, options)
    for col in result.leakage_suspects:
        status = "kept (--keep)" if col in options.keep else "excluded"
        info(f"warning: '{col}' looks like a leak and is {status}: {result.excluded_columns.get(col, '')}")
    for note in result.notes:
        info(f"note: {note}")
    logged = log_training(
        result, data, spec_to_yaml(spec.model_dump(mode="json")), contract_path, promote=promote
    )
    summary = {
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
        "cutoff": {k: result.cutoff[k] for k in CUTOFF_KEYS},
        "n_train": result.n_train,
        "n_test": result.n_test,
        "uncertainty": result.uncertainty,
        "notes": result.notes,
    }
    return result, summary


def monitor_and_report(
    model: str | Path,
    reference: str | Path,
    current: str | Path,
    out: str | Path,
    *,
    feedback: str | Path | None = None,
    source: str | None = None,
    log: bool = True,
) -> dict[str, Any]:
    """Run the monitor, write its HTML report atomically and log the run to MLflow (``leadscore monitor``)."""
    from leadscore.bundle import ModelBundle
    from leadscore.feedback import load_store
    from leadscore.monitor import monitor
    from leadscore.reports.html import monitor_report, write_html

    bundle = ModelBundle.load(model)
    store = load_store(feedback) if feedback is not None and Path(feedback).exists() else None
    result = monitor(bundle, reference, current, feedback=store, source=source)
    html = monitor_report(bundle, result)
    result["report"] = str(write_html(html, out))
    if log:
        from leadscore.registry import log_monitoring

        result["mlflow_run_id"] = log_monitoring(bundle.name, result, html)
    return result
