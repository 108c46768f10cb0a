"""A flat export's label from its lifecycle dates (``label.date_columns``), as HubSpot exports them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.folders import stage_history
from leadscore.modeling.dataset import candidate_fields, read_training_data
from leadscore.spec import load_spec

SQL, OPP = "Became a Sales Qualified Lead Date", "Became an Opportunity Date"


def _hubspot_flat(folder: Path, tmp_path: Path, already: int = 5) -> Path:
    """The generator's leads as a flat contacts export: lifecycle dates instead of a label column."""
    spec = load_spec("synthetic")
    leads = pd.read_parquet(folder / "leads.parquet")
    history, _ = stage_history(folder, spec)
    firsts = {}
    for stage, column in (("SQL", SQL), ("Opportunity", OPP)):
        rows = history[history["stage"] == stage].merge(leads[["lead_id", "scored_at"]], on="lead_id")
        rows = rows[rows["entered_at"] >= rows["scored_at"]]
        firsts[column] = rows.groupby("lead_id")["entered_at"].min()
    out = leads.drop(columns=["sql_within_90d", "true_days_to_sql"]).rename(
        columns={"lead_id": "Record ID", "scored_at": "Create Date"}
    )
    for column, first in firsts.items():
        out[column] = out["Record ID"].map(first)
    # A few leads were qualified before they were scored: no label for them.
    out.loc[out.index[:already], SQL] = out["Create Date"].iloc[:already] - pd.Timedelta(days=3)
    path = tmp_path / "contacts.csv"
    out.to_csv(path, index=False)
    return path


def _spec(tmp_path: Path) -> Path:
    raw = yaml.safe_load(
        (Path(load_spec("synthetic").rules or "").parents[1] / "datasets" / "synthetic.yaml").read_text()
    )
    for key in ("tables", "events", "stages", "engagement"):
        raw.pop(key, None)
    raw.update(id="Record ID", time="Create Date", name="hubspot-flat", rules=load_spec("synthetic").rules)
    raw["label"] = {"date_columns": [SQL, OPP], "within_days": 90}
    raw["engagement"] = ["web_visits_30d", "pricing_page_views_7d", "demo_requests"]
    path = tmp_path / "hubspot-flat.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_the_label_and_the_time_to_sql_come_from_the_lifecycle_dates(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    spec = load_spec(str(_spec(tmp_path)))
    path = _hubspot_flat(synthetic_dir, tmp_path)
    data = read_training_data(path, spec, None)
    assert any(n == f"left out 5 leads already past {SQL} / {OPP} when they were scored" for n in data.notes)
    truth = pd.read_parquet(synthetic_dir / "leads.parquet").set_index("lead_id")["sql_within_90d"]
    ids = data.frame["Record ID"].to_numpy()
    np.testing.assert_array_equal(data.y, truth.loc[ids].to_numpy())  # the generator's own label
    assert (
        data.survival is not None
        and data.survival.obs.event.sum() == data.y.sum() + data.windows["open_positive"]
    )
    fields, _ = candidate_fields(data.frame, spec)
    assert SQL not in fields and OPP not in fields  # filled in after the outcome


def test_validate_names_a_missing_date_column_and_counts_those_already_past(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    spec = _spec(tmp_path)
    path = _hubspot_flat(synthetic_dir, tmp_path, already=7)
    runner = CliRunner()
    report = json.loads(runner.invoke(app, ["validate", str(path), "--spec", str(spec), "--json"]).stdout)
    (past,) = [p for p in report["problems"] if p["check"] == "already_past"]
    assert past["count"] == 7 and report["usable"]
    pd.read_csv(path).drop(columns=[OPP]).to_csv(path, index=False)
    result = runner.invoke(app, ["validate", str(path), "--spec", str(spec)])
    assert result.exit_code == 2
    assert f"spec key 'label.date_columns': column '{OPP}' is not in the leads table" in result.output


def test_training_on_lifecycle_dates_learns_when_too(synthetic_dir: Path, tmp_path: Path) -> None:
    from leadscore.modeling.options import CAPACITIES, TrainOptions
    from leadscore.modeling.train import train_model
    from leadscore.scoring.contract import load_contract

    spec = load_spec(str(_spec(tmp_path)))
    options = TrainOptions(contract=load_contract()[0], capacities=(CAPACITIES[1],))
    result = train_model(_hubspot_flat(synthetic_dir, tmp_path), spec, options)
    assert SQL not in result.bundle.fields and result.bundle.meta.time_head is not None
    from sklearn.metrics import roc_auc_score

    truth = roc_auc_score(result.test_y, result.test_frame["true_p_sql"])  # the generator's own P(SQL)
    assert result.metrics["roc_auc"] > truth - 0.07, (result.metrics["roc_auc"], truth)


def test_time_may_list_columns_and_the_first_filled_is_the_moment(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    from leadscore.data.lifecycle import with_scoring_time
    from leadscore.modeling.options import CAPACITIES, TrainOptions
    from leadscore.modeling.train import train_model
    from leadscore.scoring.contract import load_contract
    from leadscore.service.leads import LeadChecker

    path = _hubspot_flat(synthetic_dir, tmp_path, already=0)
    frame = pd.read_csv(path)
    frame.insert(2, "MQL Date", frame["Create Date"])
    frame.loc[frame.index[::3], "MQL Date"] = None  # a third never became MQL through the form
    frame["Create Date"] = pd.to_datetime(frame["Create Date"]) - pd.Timedelta(days=2)
    frame.to_csv(path, index=False)
    spec_path = _spec(tmp_path)
    raw = yaml.safe_load(spec_path.read_text())
    raw["time"] = ["MQL Date", "Create Date"]
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(str(spec_path))
    assert (spec.time, spec.time_also) == ("MQL Date", ["Create Date"])
    moment = with_scoring_time(pd.read_csv(path), spec)["MQL Date"]
    assert moment.notna().all()
    expected = pd.to_datetime(frame["MQL Date"]).fillna(pd.to_datetime(frame["Create Date"]))
    assert (pd.to_datetime(moment) == expected).all()  # the form's date where there is one, else creation
    options = TrainOptions(contract=load_contract()[0], capacities=(CAPACITIES[1],))
    result = train_model(path, spec, options)
    assert "Create Date" not in result.bundle.fields and "MQL Date" not in result.bundle.fields
    assert len(result.test_frame) > 0 and result.test_frame["MQL Date"].notna().all()
    checked = LeadChecker(result.bundle).check({"Record ID": 1, "Create Date": "2025-03-01T10:00:00"})
    assert checked.record["MQL Date"] == "2025-03-01T10:00:00"  # the service takes the same moment


def test_the_spark_path_refuses_a_time_list_it_cannot_read_yet() -> None:
    import pytest

    from leadscore.errors import UserError
    from leadscore.spark.scoring import leads_frame

    class _Bundle:
        spec = load_spec("synthetic").model_copy(update={"time_also": ["Create Date"]})

    with pytest.raises(
        UserError, match="spec key 'time' lists columns: --engine spark does not read a list yet"
    ):
        leads_frame(None, "anything", _Bundle())  # type: ignore[arg-type]  # refused before Spark is touched
