"""Integration: a real training run read back from a real MLflow store and registry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from leadscore.scoring.bundle import ModelBundle
from leadscore.tracking.loading import load_bundle
from tests.helpers import Trained, make_leads

pytestmark = pytest.mark.slow


@pytest.fixture()
def store(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    from leadscore.config import get_settings

    for k, v in trained["env"].items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    mlflow.set_tracking_uri(trained["env"]["LEADSCORE_TRACKING_URI"])
    mlflow.set_registry_uri(trained["env"]["LEADSCORE_TRACKING_URI"])
    yield MlflowClient()
    get_settings.cache_clear()


def test_run_has_metrics_params_and_evidence(trained: Trained, store: MlflowClient) -> None:
    payload = trained["payload"]
    run = store.get_run(payload["run_id"])
    m = run.data.metrics
    for key in (
        "test_roc_auc",
        "test_pr_auc",
        "test_brier",
        "test_log_loss",
        "test_ece",
        "test_lift_top_decile",
        "mql_sql_rate",
        "mql_recall",
        "points_model_roc_auc",
        "logistic_regression_roc_auc",
        "points_model_sql_rate_at_same_volume",
    ):
        assert key in m, key
    assert m["test_roc_auc"] == pytest.approx(payload["metrics"]["roc_auc"])
    assert run.data.params["dataset"] == "synthetic" and "data_sha256" in run.data.params
    assert len(run.data.tags["data_sha256"]) == 64
    names = {a.path for a in store.list_artifacts(run.info.run_id)}
    assert {
        "shap_summary.png",
        "shap_bar.png",
        "reliability.png",
        "gains.png",
        "validation_report.json",
        "leakage_report.json",
        "cutoff_contract.yaml",
        "dataset_spec.yaml",
    } <= names
    local = Path(store.download_artifacts(run.info.run_id, "shap_summary.png"))
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and local.stat().st_size > 10_000
    bar = Path(store.download_artifacts(run.info.run_id, "shap_bar.png"))
    assert bar.read_bytes() != local.read_bytes()  # two plots, not one figure saved twice


def test_model_is_registered_with_aliases(trained: Trained, store: MlflowClient) -> None:
    champion = store.get_model_version_by_alias("leadscore-synthetic", "champion")
    challenger = store.get_model_version_by_alias("leadscore-synthetic", "challenger")
    assert (
        str(champion.version) == str(challenger.version) == trained["payload"]["model_uri"].rsplit("/", 1)[1]
    )
    assert champion.run_id == trained["payload"]["run_id"]


def test_registry_uri_exported_folder_and_pyfunc_score_alike(trained: Trained, store: MlflowClient) -> None:
    leads = make_leads(200, 90)
    exported = ModelBundle.load(trained["model_path"])
    registered = load_bundle("models:/leadscore-synthetic@champion")
    a = exported.score_frame(leads).p_sql
    b = registered.score_frame(leads).p_sql
    assert (a == b).all()
    pyfunc = mlflow.pyfunc.load_model(str(trained["model_path"]))
    sample = leads[[c for c in pyfunc.metadata.get_input_schema().input_names()]].head(20).copy()
    for col in sample.columns:
        if (
            sample[col].dtype != "float64"
            and col in exported.fields
            and exported.encoder.field(col).kind == "numeric"
        ):
            sample[col] = sample[col].astype("float64")
    sample = sample.astype({c: object for c in sample.columns if sample[c].dtype != "float64"})
    out = pyfunc.predict(sample)
    assert list(out.columns)[:4] == ["lead_id", "p_sql", "mql", "grade"]
    assert (out["p_sql"].to_numpy() == pd.Series(a[:20]).round(6).to_numpy()).all()
    assert (Path(trained["model_path"]) / "MLmodel").is_file()
    assert os.path.isdir(Path(trained["model_path"]) / "artifacts" / "bundle")
