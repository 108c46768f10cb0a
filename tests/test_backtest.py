"""leadscore backtest: each month's model knew only what was known on the month's first day."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.synthetic import write_dataset
from tests.helpers import make_tables, mlflow_env, private_env

pytestmark = pytest.mark.slow
WINDOW = pd.Timedelta(days=90)


def test_a_backtest_trains_each_month_on_what_was_known_then(tmp_path: Path) -> None:
    data = tmp_path / "export"
    write_dataset(make_tables(4000, 21, fault_rate=0.0), data)
    env = {"LEADSCORE_SEARCH_TRIALS": "0", **mlflow_env(tmp_path)}
    page = tmp_path / "backtest.html"
    with private_env(env):
        result = CliRunner().invoke(
            app,
            [
                "backtest",
                str(data),
                "--spec",
                "synthetic",
                "--from",
                "2025-02-01",
                "--to",
                "2025-04-30",
                "--json",
                "--out",
                str(page),
            ],
        )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    leads = pd.read_parquet(data / "leads.parquet")
    scored = leads["scored_at"]
    export_day = pd.read_parquet(data / "events.parquet")["occurred_at"].max()
    assert [m["month"] for m in out["months"]] == ["2025-02", "2025-03", "2025-04"]
    for row in out["months"]:
        start = pd.Timestamp(row["month"] + "-01")
        end = start + pd.offsets.MonthBegin(1)
        assert row["trained"], row
        # Trained on the leads whose window had closed by the month's first day, and no other.
        assert row["trained_on"] == int((scored + WINDOW < start).sum())
        # Judged on the month's leads whose window has closed by the export's day.
        month = (scored >= start) & (scored < end) & (scored + WINDOW <= export_day)
        assert row["matured_leads"] == int(month.sum()) > 100
        assert row["sql"] == int(leads.loc[month, "sql_within_90d"].sum())
        assert 0.6 < row["roc_auc"] <= 1 and 0 <= row["ece"] < 0.2
        assert row["promised_mql_sql_rate"] == 0.30 and row["points_roc_auc"] is not None
        assert row["mql"] == round(row["mql_share"] * row["matured_leads"])
    # Logged to MLflow: one figure per month as steps, the table and the page.
    client = MlflowClient(tracking_uri=env["LEADSCORE_TRACKING_URI"])
    history = client.get_metric_history(out["mlflow_run_id"], "roc_auc")
    assert [m.step for m in history] == [0, 1, 2]
    assert [round(m.value, 9) for m in history] == [round(r["roc_auc"], 9) for r in out["months"]]
    text = html.unescape(page.read_text())
    assert "Would it have worked?" in text and "2025-03" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "week"], "--every: 'week' is not supported"),
        (["--from", "someday"], "--from: 'someday' is not a date"),
    ],
)
def test_a_backtest_refuses_what_it_cannot_do_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    data = tmp_path / "export"
    write_dataset(make_tables(300, 2), data)
    with private_env(mlflow_env(tmp_path)):
        result = CliRunner().invoke(app, ["backtest", str(data), "--spec", "synthetic", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_months_that_share_the_tables_read_what_a_fresh_read_gives(tmp_path: Path) -> None:
    """A backtest reads the activity log and the status history once for all its months: each
    month's labels and features must be what reading the folder afresh as of that day gives."""
    from leadscore.modeling.dataset import read_training_data
    from leadscore.spec import load_spec

    write_dataset(make_tables(3000, 22, fault_rate=0.0), tmp_path)
    spec = load_spec("synthetic")
    shared: dict[str, tuple[pd.DataFrame, str]] = {}
    for day in ("2025-02-01", "2025-04-01", "2025-03-01"):
        as_of = spec.model_copy(update={"observed_until": pd.Timestamp(day).to_pydatetime()})
        reused = read_training_data(tmp_path, as_of, None, tables=shared)
        fresh = read_training_data(tmp_path, as_of, None)
        pd.testing.assert_frame_equal(reused.frame, fresh.frame)
        assert (reused.y == fresh.y).all() and reused.windows == fresh.windows
    assert set(shared) == {"events", "stages"}
