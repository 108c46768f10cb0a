"""``leadscore spec init``: a first spec drafted from an export, each choice with its reason, that
validates and trains as drafted; with ``--crm`` only what the export adds to the shipped spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.synthetic import write_dataset
from leadscore.data.synthetic.hubspot import hubspot_tables
from leadscore.spec import load_spec
from tests.helpers import make_tables, mlflow_env, private_env

runner = CliRunner()


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("init")
    tables = make_tables(3000, 12, fault_rate=0.0)
    write_dataset(tables, root / "native")
    (root / "hubspot").mkdir()
    for name, frame in hubspot_tables(tables, 12).items():
        frame.to_csv(root / "hubspot" / f"{name}.csv", index=False)
    return {"root": root, "native": root / "native", "hubspot": root / "hubspot"}


def _init(path: Path, out: Path, *extra: str) -> dict[str, Any]:
    result = runner.invoke(app, ["spec", "init", str(path), "--out", str(out), "--json", *extra])
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_a_hubspot_export_gets_a_commented_draft_that_trains(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "draft.yaml"
    found = _init(exports["hubspot"], out)
    text = out.read_text()
    doc = yaml.safe_load(text)
    assert doc["id"] == "Record ID" and doc["email"] == "Email"
    assert doc["time"] == ["Became a Marketing Qualified Lead Date", "Create Date"]
    assert doc["label"]["date_columns"] == [
        "Became a Sales Qualified Lead Date",
        "Became an Opportunity Date",
    ]
    assert doc["events"]["engagements"]["id"] == "Contact ID"  # not the table's own Engagement ID
    assert set(doc["events"]) == {"engagements", "form_submissions", "page_views"}
    for column in (
        "Number of Pageviews",
        "Number of Sessions",
        "Number of Form Submissions",
        "Last Activity Date",
    ):
        assert "counted as of the export" in doc["exclude"][column]
    assert "personal data" in doc["exclude"]["First Name"] and "Lifecycle Stage" in doc["exclude"]
    assert "Number of Employees" not in doc["exclude"] and "Job Title" not in doc["exclude"]
    # every choice is one line with its reason
    for line in text.splitlines():
        if line.startswith(("id:", "email:", "time:", "label:")) or line.startswith("  engagements"):
            assert "  # " in line, line
    assert found["label"] == "date_columns"
    with private_env({"LEADSCORE_SEARCH_TRIALS": "0", **mlflow_env(tmp_path)}):
        result = runner.invoke(app, ["train", str(exports["hubspot"]), "--spec", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["metrics"]["roc_auc"] > 0.75
    assert "Number of Pageviews" in payload["excluded_columns"]


def test_a_folder_with_a_status_history_gets_its_stages(exports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "native.yaml"
    _init(exports["native"], out)
    spec = load_spec(str(out))
    assert spec.time == "scored_at" and spec.time_also == ["created_at"]
    assert spec.label.stages == ["SQL"] and spec.stages is not None and spec.stages.stage == "stage"
    assert spec.logs["events"].id == "lead_id" and "call_duration_sec" in spec.exclude


def test_with_crm_the_draft_extends_the_shipped_spec(exports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "ours.yaml"
    _init(exports["hubspot"], out, "--crm", "hubspot")
    text = out.read_text()
    assert yaml.safe_load(text)["extends"] == "hubspot"
    assert "# log page_views: page_views found" in text
    spec = load_spec(str(out))
    assert spec.id == "Record ID" and "Number of Pageviews" in spec.exclude  # the shipped spec's


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--crm", "pipedrive"], "--crm: unknown CRM 'pipedrive'"),
        (["--crm", "salesforce"], "no 'Lead' table"),
    ],
)
def test_bad_input_is_one_line(exports: dict[str, Path], tmp_path: Path, args: list[str], says: str) -> None:
    out = tmp_path / "x.yaml"
    result = runner.invoke(app, ["spec", "init", str(exports["hubspot"]), "--out", str(out), *args])
    assert result.exit_code == 2 and says in result.output and not out.exists()
    assert len(result.output.strip().splitlines()) == 1


def test_an_existing_spec_is_kept_unless_forced(exports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mine.yaml"
    out.write_text("name: mine\n")
    result = runner.invoke(app, ["spec", "init", str(exports["hubspot"]), "--out", str(out)])
    assert result.exit_code == 2 and "--force" in result.output and out.read_text() == "name: mine\n"
    result = runner.invoke(
        app, ["spec", "init", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y.yaml")]
    )
    assert result.exit_code == 2 and "no such file or folder" in result.output
    _init(exports["hubspot"], out, "--force")
    assert load_spec(str(out)).name == "mine"
