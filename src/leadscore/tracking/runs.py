"""Runs: one training or monitoring run logged to MLflow (params, metrics, artifacts, the registered model)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import yaml

from leadscore.modeling.leakage import report as leakage_report
from leadscore.modeling.train import TrainResult
from leadscore.scoring.meta import Registered
from leadscore.scoring.segment_keys import segment_rows, slug
from leadscore.tracking.champions import CHAMPION, set_aliases
from leadscore.tracking.export import challenger_folder, export, input_example, pyfunc_args
from leadscore.tracking.lineage import check_lineage, record_lineage
from leadscore.tracking.store import (
    client,
    configure,
    experiment_id,
    fail_abandoned_runs,
    owner_tags,
    quiet,
    registered_name,
)


def training_metrics(result: TrainResult) -> dict[str, float]:
    """The run's metrics: the model's and each baseline's on the test rows, and the cutoff's promise."""
    metrics: dict[str, Any] = {f"test_{k}": v for k, v in result.metrics.items()}
    for name, values in result.baselines.items():
        metrics.update({f"{name}_{k}": v for k, v in values.items()})
    cut = result.cutoff
    metrics.update(
        {
            "cutoff_threshold": cut.threshold,
            "mql_share": cut.expected_mql_share,
            "mql_sql_rate": cut.expected_sql_rate,
            "mql_recall": cut.expected_recall,
            "points_model_sql_rate_at_same_volume": cut.points_model_sql_rate_at_same_volume,
            "n_train": result.n_train,
            "n_test": result.n_test,
        }
    )
    routing = result.bundle.meta.segments
    for row in segment_rows(routing) if routing is not None else []:
        for key in ("roc_auc_global", "roc_auc_segment", "threshold", "mql_share", "mql_sql_rate", "n_test"):
            metrics[f"segment_{slug(row['segment'])}_{key}"] = row[key]
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def _write_files(folder: Path, result: TrainResult, spec_yaml: str, contract_path: Path) -> None:
    """The run's own evidence: the spec, the contract, the validation and leakage reports."""
    (folder / "dataset_spec.yaml").write_text(spec_yaml, encoding="utf-8")
    shutil.copy(contract_path, folder / "cutoff_contract.yaml")
    (folder / "validation_report.json").write_text(json.dumps(result.validation.to_dict(), indent=1))
    leakage = {
        "suspects": result.leakage_suspects,
        "excluded_columns": result.excluded_columns,
        "columns": leakage_report(result.leakage_findings),
    }
    (folder / "leakage_report.json").write_text(json.dumps(leakage, indent=1))


def log_training(
    result: TrainResult,
    data_path: str | Path,
    spec_yaml: str,
    contract_path: Path,
    *,
    artifacts: Mapping[str, str | bytes] | None = None,
    promote: bool = False,
) -> dict[str, Any]:
    """Log one training run to MLflow, register its model and export it; return where it all is.

    ``artifacts`` are files made elsewhere (plots, the model card), by name, logged with the run.
    """
    configure()
    bundle = result.bundle
    name = registered_name(bundle.name)
    registry = client()
    check_lineage(registry, name, bundle)
    exp = experiment_id(name)
    fail_abandoned_runs(registry, exp)
    example = input_example(bundle, result.test_frame)
    with (
        quiet(),
        mlflow.start_run(experiment_id=exp, tags=owner_tags()) as run,
        tempfile.TemporaryDirectory() as tmp_dir,
    ):
        tmp = Path(tmp_dir)
        mlflow.set_tags(
            {"dataset": bundle.name, "data_sha256": result.data_hash, "model_version": bundle.version}
        )
        mlflow.log_params(dict(result.params))
        mlflow.log_params({"data_sha256": result.data_hash[:16], "data_path": str(data_path)})
        mlflow.log_metrics(training_metrics(result))
        _write_files(tmp, result, spec_yaml, contract_path)
        for filename, content in (artifacts or {}).items():
            target = tmp / filename
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        mlflow.log_artifacts(str(tmp))
        if result.uncertainty:
            mlflow.log_dict(result.uncertainty, "uncertainty.json")
        if bundle.meta.segments is not None:  # each segment's champion, with both held-out AUCs
            mlflow.log_dict(
                {"by": bundle.meta.segments.by, "segments": segment_rows(bundle.meta.segments)},
                "segments.json",
            )
        with pyfunc_args(bundle, example) as args:
            info = mlflow.pyfunc.log_model(name="model", registered_model_name=name, **args)
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    record_lineage(registry, name, version, bundle)
    aliases = set_aliases(registry, name, version, promote=promote, reason="first model" if promote else "")
    bundle.meta.registered = Registered(name=name, version=version, run_id=run_id, aliases=aliases)
    # models/<dataset>/ is what services load: it only ever holds the champion.
    model_path = export(
        bundle, example, folder=None if CHAMPION in aliases else challenger_folder(bundle.name)
    )
    return {
        "run_id": run_id,
        "model_uri": f"models:/{name}/{version}",
        "model_path": str(model_path),
        "registered_model": name,
        "registered_version": version,
        "aliases": aliases,
        "experiment_id": exp,
        "segments": segment_rows(bundle.meta.segments) if bundle.meta.segments is not None else None,
    }


def log_monitoring(dataset: str, result: dict[str, Any], html: str) -> str:
    """Log one monitoring run (verdict, drift and outcome figures, the report) beside the model's runs."""
    configure()
    exp = experiment_id(f"{registered_name(dataset)}-monitoring")
    outcomes = result.get("outcomes") or {}
    metrics = {
        "score_psi": result["score_psi"],
        "max_field_psi": max((f["psi"] for f in result["fields"]), default=0.0),
        "mql_share": result["volume"]["mql_share"],
        **{k: outcomes[k] for k in ("ece", "roc_auc", "mql_sql_rate", "calibration_z") if k in outcomes},
    }
    fail_abandoned_runs(client(), exp)
    with quiet(), mlflow.start_run(experiment_id=exp, tags=owner_tags()) as run:
        mlflow.set_tags(
            {
                "verdict": result["verdict"],
                "model_version": result["model_version"],
                "current": result["current"]["source"],
                "reference": result["reference"]["source"],
            }
        )
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        mlflow.log_dict(result, "monitor.json")
        mlflow.log_text(html, "monitor.html")
        return str(run.info.run_id)


BACKTEST_METRICS = (
    "roc_auc",
    "ece",
    "mql_share",
    "mql_sql_rate",
    "points_roc_auc",
    "points_sql_rate_at_same_volume",
)


def log_backtest(dataset: str, result: dict[str, Any], html: str) -> str:
    """Log a backtest (each month's figures as a step: month 0, 1, ...; the table; the page)."""
    configure()
    exp = experiment_id(f"{registered_name(dataset)}-backtest")
    fail_abandoned_runs(client(), exp)
    with quiet(), mlflow.start_run(experiment_id=exp, tags=owner_tags()) as run:
        months = result["months"]
        mlflow.set_tags({"every": result["every"], "months": f"{months[0]['month']}..{months[-1]['month']}"})
        for step, row in enumerate(months):
            values = {k: row.get(k) for k in BACKTEST_METRICS}
            mlflow.log_metrics(
                {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}, step=step
            )
        mlflow.log_dict(result, "backtest.json")
        mlflow.log_text(html, "backtest.html")
        return str(run.info.run_id)


def spec_to_yaml(spec_dict: dict[str, Any]) -> str:
    return yaml.safe_dump(spec_dict, sort_keys=False, allow_unicode=True)
