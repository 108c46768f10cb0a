"""Monitoring: the generator's drifted period is caught, an undrifted one is not, and it is all logged."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.synthetic import DRIFT_SOURCE, write_dataset
from leadscore.monitoring.drift import code_psi, numeric_psi
from leadscore.monitoring.monitor import monitor
from leadscore.scoring.bundle import ModelBundle
from tests.helpers import Trained, make_tables


@pytest.fixture(scope="module")
def periods(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("periods")
    write_dataset(make_tables(5000, 12), root / "quiet")
    write_dataset(make_tables(5000, 12, drift=True), root / "drifted")
    return {"quiet": root / "quiet", "drifted": root / "drifted"}


def run_monitor(trained: Trained, reference: Path, current: Path, out: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            "--model",
            str(trained["model_path"]),
            "--reference",
            str(reference),
            "--current",
            str(current),
            "--out",
            str(out),
            "--json",
        ],
        env=trained["env"],
    )
    return result.exit_code, json.loads(result.stdout)


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=20_000)
    assert numeric_psi(a, a) == pytest.approx(0.0, abs=1e-12)
    assert numeric_psi(a, rng.normal(size=20_000)) < 0.01  # sampling noise stays far below the bands
    assert numeric_psi(a, rng.normal(loc=1.0, size=20_000)) > 0.25
    codes = rng.integers(0, 5, 10_000)
    assert code_psi(codes, codes) == pytest.approx(0.0, abs=1e-12)
    assert code_psi(codes, np.where(codes == 0, 4, codes)) > 0.25


def test_an_undrifted_period_is_not_flagged(
    trained: Trained, synthetic_dir: Path, periods: dict[str, Path], tmp_path: Path
) -> None:
    code, result = run_monitor(trained, synthetic_dir, periods["quiet"], tmp_path / "quiet.html")
    assert code == 0, result["reasons"]
    assert result["verdict"] == "ok"
    assert result["score_band"] == "stable"
    assert all(f["band"] == "stable" for f in result["fields"])
    assert result["outcomes"]["leads_with_outcome"] > 4000
    assert abs(result["outcomes"]["calibration_z"]) < 3
    assert [s["sql_share"] for s in result["sources"]] == sorted(
        (s["sql_share"] for s in result["sources"]), reverse=True
    )  # ranked by SQL share, not MQL count
    assert (tmp_path / "quiet.html").is_file()


def test_the_drifted_period_is_caught_and_named_but_its_outcomes_decide(
    trained: Trained, synthetic_dir: Path, periods: dict[str, Path], tmp_path: Path
) -> None:
    """A new channel and changed behaviour are named; with matured outcomes that still hold (within
    their noise), drift alone is a watch, not a retrain."""
    code, result = run_monitor(trained, synthetic_dir, periods["drifted"], tmp_path / "drift.html")
    assert code == 0
    assert result["verdict"] == "watch"
    by_field = {f["field"]: f for f in result["fields"]}
    assert by_field["lead_source"]["band"] == "act"
    assert [c["value"] for c in by_field["lead_source"]["new"]] == [DRIFT_SOURCE]
    assert any("lead_source" in r for r in result["reasons"])
    assert by_field["pricing_page_views_total"]["psi"] > 0.1  # the changed pricing-page behaviour
    assert result["outcomes"]["leads_with_outcome"] > 1000
    assert 0 < result["input_psi_weighted"] < by_field["lead_source"]["psi"]  # weighed by attribution
    assert set(result) >= {"verdict", "reasons", "score_psi", "fields", "outcomes", "sources", "contract"}


def test_outcomes_that_fail_beyond_their_noise_call_for_a_retrain_and_exit_3(
    trained: Trained, synthetic_dir: Path, periods: dict[str, Path], tmp_path: Path
) -> None:
    leads = pd.read_parquet(periods["quiet"] / "leads.parquet")
    label = leads["sql_within_90d"].to_numpy()
    leads["sql_within_90d"] = np.random.default_rng(3).permutation(label)  # the ranking is gone
    current = tmp_path / "shuffled.parquet"
    leads.to_parquet(current)
    code, result = run_monitor(trained, synthetic_dir, current, tmp_path / "shuffled.html")
    assert code == 3
    assert result["verdict"] == "retrain"
    assert any(r.startswith("retrain: ROC AUC") for r in result["reasons"])
    # Logged to MLflow, with the verdict as a tag and the report as an artifact.
    client = MlflowClient(tracking_uri=trained["env"]["LEADSCORE_TRACKING_URI"])
    run = client.get_run(result["mlflow_run_id"])
    assert run.data.tags["verdict"] == "retrain"
    assert run.data.metrics["score_psi"] == pytest.approx(result["score_psi"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"monitor.json", "monitor.html"}


def test_overdue_contract_and_rejections_by_source(
    trained: Trained, synthetic_dir: Path, periods: dict[str, Path], tmp_path: Path
) -> None:
    from leadscore.monitoring.feedback import import_feedback, load_store

    bundle = ModelBundle.load(trained["model_path"])
    store = tmp_path / "fb.db"
    import_feedback(periods["quiet"] / "feedback.parquet", store)
    due = trained["review_by"]
    result = monitor(
        bundle, synthetic_dir, periods["quiet"], feedback=load_store(store), today=due + timedelta(days=1)
    )
    assert result["verdict"] == "watch"
    assert result["contract"]["overdue"] is True
    assert any(f"was due for review on {due.isoformat()}" in r for r in result["reasons"])
    on_the_day = monitor(bundle, synthetic_dir, periods["quiet"], today=due)
    assert on_the_day["contract"]["overdue"] is False  # due that day, not yet overdue
    rows = result["rejections_by_source"]
    assert rows and sum(r["duplicate"] + r["bad data"] for r in rows) > 0
    assert {"source", "rejected", "duplicate", "bad data", "not ICP"} <= set(rows[0])


def test_monitor_errors_name_the_file(trained: Trained, synthetic_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            "--model",
            str(trained["model_path"]),
            "--reference",
            str(synthetic_dir),
            "--current",
            str(tmp_path / "nope.csv"),
        ],
        env=trained["env"],
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'nope.csv'}: file not found"


def test_the_time_heads_horizons_are_checked_against_what_was_observed(
    trained: Trained, synthetic_dir: Path, periods: dict[str, Path]
) -> None:
    bundle = ModelBundle.load(trained["model_path"])
    assert bundle.time_head is not None
    result = monitor(bundle, synthetic_dir, periods["quiet"])
    rows = {r["days"]: r for r in result["horizons"]}
    assert sorted(rows) == [7, 30, 90]
    assert rows[7]["leads"] >= rows[30]["leads"] >= rows[90]["leads"] > 1000  # known by then: fewer later
    assert rows[7]["observed_sql"] <= rows[30]["observed_sql"]
    for row in rows.values():
        assert abs(row["z"]) < 3 and row["expected_sql"] > 0  # a quiet period: as the head expected
    leads = pd.read_parquet(periods["quiet"] / "leads.parquet")
    flat = monitor(bundle, synthetic_dir, leads)  # no status history (served-like frame): no horizons
    assert flat["horizons"] == []
