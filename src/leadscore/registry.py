"""MLflow: log a training run (params, metrics, plots, SHAP), register the pyfunc bundle, export it."""

from __future__ import annotations

import contextlib
import getpass
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from leadscore.bundle import ModelBundle
from leadscore.config import get_settings

log = logging.getLogger(__name__)
CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"  # the line of champions, for rollback
PIP_REQUIREMENTS = [
    "lightgbm>=4.3",
    "numpy>=2.0",
    "pandas>=3.0",
    "scikit-learn>=1.5",
    "pyyaml>=6",
    "pydantic>=2.6",
]


class LeadScorePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """The bundle as an MLflow pyfunc: strings in, calibrated P(SQL), MQL flag and grade out."""

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        explain = int((params or {}).get("explain", 0))
        return score_output(self.bundle, model_input, explain=explain)


def score_output(bundle: ModelBundle, frame: pd.DataFrame, explain: int = 0) -> pd.DataFrame:
    """The batch-scoring table: id, p_sql, mql, grade and, when asked, the top reasons."""
    scored = bundle.score_frame(frame, explain=explain)
    out: dict[str, Any] = {}
    id_col = bundle.id_column
    if id_col and id_col in frame.columns:
        out[id_col] = frame[id_col].to_numpy()
    out["p_sql"] = np.round(scored.p_sql, 6)
    out["mql"] = scored.mql
    out["grade"] = scored.grade.astype(str)
    if explain and scored.reasons is not None:
        for k in range(explain):
            out[f"reason_{k + 1}"] = [
                f"{r[k].text} ({r[k].weight_pp:+.1f} pp)" if k < len(r) else ""
                for r in _ranked(scored.reasons)
            ]
    return pd.DataFrame(out)


def _ranked(reasons: list[list[Any]]) -> list[list[Any]]:
    return [sorted(r, key=lambda x: -abs(x.weight_pp)) for r in reasons]


def configure() -> str:
    """Point MLflow at the project's local store (sqlite + artifacts under mlruns/)."""
    settings = get_settings()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(name: str) -> str:
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    root = Path(get_settings().artifact_root).resolve() / name
    return str(client.create_experiment(name, artifact_location=root.as_uri()))


def registered_name(dataset: str) -> str:
    return f"leadscore-{dataset}"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow prints progress bars and hints on stdout; keep stdout for --json."""
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def _input_example(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in bundle.fields if c in frame.columns]
    extra = [
        c for c in (bundle.id_column, bundle.encoder.time_col) if c and c in frame.columns and c not in cols
    ]
    example = frame[[*extra, *cols]].head(5).copy()
    for col in example.columns:
        kind = bundle.encoder.field(col).kind if col in bundle.fields else "text"
        if kind == "numeric":
            example[col] = pd.to_numeric(example[col], errors="coerce").astype("float64")
        else:
            example[col] = example[col].map(lambda v: None if v is None or v != v else str(v)).astype(object)
    return example


@contextlib.contextmanager
def _pyfunc_args(bundle: ModelBundle, example: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """What MLflow needs to write the bundle as a pyfunc model (logged or saved alike)."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = bundle.save(Path(tmp) / "bundle")
        yield {
            "python_model": LeadScorePyfunc(),
            "artifacts": {"bundle": str(bundle_dir)},
            "signature": infer_signature(example, score_output(bundle, example), params={"explain": 0}),
            "input_example": example,
            "pip_requirements": PIP_REQUIREMENTS,
        }


def save_pyfunc(bundle: ModelBundle, example: pd.DataFrame, path: Path) -> None:
    """Write a complete MLflow model directory (servable with ``mlflow models serve``)."""
    with _pyfunc_args(bundle, example) as args, _quiet():
        mlflow.pyfunc.save_model(path=str(path), **args)


def export(bundle: ModelBundle, example: pd.DataFrame, models_dir: str | Path | None = None) -> Path:
    """Export to ``models/<dataset>/`` atomically: the old model stays until the new one is complete."""
    target = Path(models_dir or get_settings().models_dir) / bundle.name
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.", dir=target.parent))
    try:
        save_pyfunc(bundle, example, staging / "model")
        swap_in(staging / "model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def swap_in(ready: Path, target: Path) -> None:
    """Replace ``target`` by the complete folder ``ready`` (two renames; the old one is kept until then)."""
    old = target.parent / f".{target.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(ready, target)
    if old.exists():
        shutil.rmtree(old)


def export_version(name: str, version: str) -> Path:
    """Export a registered version to ``models/<dataset>/`` as logged, marked with its registry identity."""
    dataset = name.removeprefix("leadscore-")
    target = Path(get_settings().models_dir) / dataset
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dataset}.", dir=target.parent))
    try:
        with _quiet():
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{name}/{version}", dst_path=str(staging / "model")
                )
            )
        meta_path = local / "artifacts" / "bundle" / "bundle.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        mv = MlflowClient().get_model_version(name, version)
        meta["registered"] = {
            "name": name,
            "version": version,
            "run_id": mv.run_id,
            "aliases": sorted(mv.aliases),
        }
        meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
        swap_in(local, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def log_training(
    result: Any, data_path: str | Path, spec_yaml: str, contract_path: Path, promote: bool = False
) -> dict[str, Any]:
    """Log one training run to MLflow, register its model and export it; return where it all is."""
    from leadscore.reports import plots

    configure()
    bundle: ModelBundle = result.bundle
    exp = experiment_id(registered_name(bundle.name))
    example = _input_example(bundle, result.test_frame)
    with _quiet(), mlflow.start_run(experiment_id=exp) as run, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        mlflow.set_tags(
            {"dataset": bundle.name, "data_sha256": result.data_hash, "model_version": bundle.version}
        )
        mlflow.log_params({k: v for k, v in result.params.items()})
        mlflow.log_param("data_sha256", result.data_hash[:16])
        mlflow.log_param("data_path", str(data_path))
        metrics = {f"test_{k}": v for k, v in result.metrics.items()}
        for name, values in result.baselines.items():
            metrics.update({f"{name}_{k}": v for k, v in values.items()})
        cut = result.cutoff
        metrics.update(
            {
                "cutoff_threshold": cut["threshold"],
                "mql_share": cut["expected_mql_share"],
                "mql_sql_rate": cut["expected_sql_rate"],
                "mql_recall": cut["expected_recall"],
                "n_train": result.n_train,
                "n_test": result.n_test,
            }
        )
        if cut["points_model_sql_rate_at_same_volume"] is not None:
            metrics["points_model_sql_rate_at_same_volume"] = cut["points_model_sql_rate_at_same_volume"]
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})

        (tmp / "dataset_spec.yaml").write_text(spec_yaml, encoding="utf-8")
        shutil.copy(contract_path, tmp / "cutoff_contract.yaml")
        (tmp / "validation_report.json").write_text(json.dumps(result.validation.to_dict(), indent=1))
        from leadscore.modeling.leakage import report as leakage_report

        (tmp / "leakage_report.json").write_text(
            json.dumps(
                {
                    "suspects": result.leakage_suspects,
                    "excluded_columns": result.excluded_columns,
                    "columns": leakage_report(result.leakage_findings),
                },
                indent=1,
            )
        )
        plots.save(plots.reliability_plot(result.test_y, result.test_p), tmp / "reliability.png")
        curves = {"model": result.test_p}
        if result.test_points is not None:
            curves["points model"] = result.test_points
        plots.save(plots.gains_plot(result.test_y, curves), tmp / "gains.png")
        sample = min(2000, len(result.test_X))
        contrib, _ = bundle.field_contributions(result.test_X[:sample])
        shown = _field_values(bundle, result.test_X[:sample])
        beeswarm, bar = plots.shap_plots(contrib, shown, bundle.fields)
        plots.save(beeswarm, tmp / "shap_summary.png")
        plots.save(bar, tmp / "shap_bar.png")
        from leadscore.reports.html import model_card

        (tmp / "model_card.html").write_text(model_card(bundle), encoding="utf-8")
        mlflow.log_artifacts(str(tmp))
        if result.uncertainty:
            mlflow.log_dict(result.uncertainty, "uncertainty.json")

        with _pyfunc_args(bundle, example) as args:
            info = mlflow.pyfunc.log_model(
                name="model", registered_model_name=registered_name(bundle.name), **args
            )
        run_id = run.info.run_id
    client = MlflowClient()
    name = registered_name(bundle.name)
    version = str(info.registered_model_version)
    aliases = set_aliases(client, name, version, promote=promote, reason="first model" if promote else "")
    bundle.meta["registered"] = {"name": name, "version": version, "run_id": run_id, "aliases": aliases}
    model_path = export(bundle, example)
    return {
        "run_id": run_id,
        "model_uri": f"models:/{name}/{version}",
        "model_path": str(model_path),
        "registered_model": name,
        "registered_version": version,
        "aliases": aliases,
        "experiment_id": exp,
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
    with _quiet(), mlflow.start_run(experiment_id=exp) as run:
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


def set_aliases(
    client: MlflowClient, name: str, version: str, *, promote: bool, reason: str = ""
) -> list[str]:
    """``challenger`` always; ``champion`` for the first model or when asked."""
    client.set_registered_model_alias(name, CHALLENGER, version)
    aliases = [CHALLENGER]
    has_champion = champion_version(client, name) is not None
    if promote or not has_champion:
        because = reason or ("first model" if not has_champion else "--promote")
        record_champion(client, name, version, by=who(), because=because)
        aliases.append(CHAMPION)
    return aliases


def who(by: str | None = None) -> str:
    if by:
        return by
    try:
        return os.environ.get("LEADSCORE_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now_utc() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def champion_version(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def history(client: MlflowClient, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    try:
        return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]
    except ValueError:
        return []


def record_champion(client: MlflowClient, name: str, version: str, *, by: str, because: str) -> None:
    """Point ``champion`` at ``version`` and write who, when and why (also used by training)."""
    previous = champion_version(client, name)
    line = history(client, name) or ([previous] if previous else [])
    if not line or line[-1] != version:
        line.append(version)
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(line[-50:]))
    for key, value in {
        "promoted_by": by,
        "promoted_at": now_utc(),
        "promoted_because": because,
        "previous_champion": previous or "",
    }.items():
        client.set_model_version_tag(name, version, key, value)


def _field_values(bundle: ModelBundle, X: np.ndarray) -> np.ndarray:
    """One value per field for colouring the beeswarm (the field's first feature)."""
    first: dict[str, int] = {}
    for j, src in enumerate(bundle.encoder.feature_fields):
        first.setdefault(src, j)
    return X[:, np.array([first[f] for f in bundle.fields], dtype=np.intp)]


def spec_to_yaml(spec_dict: dict[str, Any]) -> str:
    return yaml.safe_dump(spec_dict, sort_keys=False, allow_unicode=True)
