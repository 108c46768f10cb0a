"""The command line as users call it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from leadscore.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("generate", "validate", "points"):
        assert command in result.stdout


def test_python_m_leadscore_works() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "leadscore", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "generate" in proc.stdout


def test_generate_writes_csv_on_request(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["generate", "--leads", "800", "--seed", "5", "--out", str(tmp_path), "--format", "csv", "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["leads"] == 816 and 0 < payload["sql_rate"] < 0.2
    leads = pd.read_csv(tmp_path / "leads.csv")
    assert len(leads) == 816 and "sql_within_90d" in leads


def test_generate_rejects_unknown_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--leads", "10", "--out", str(tmp_path), "--format", "xlsx"])
    assert result.exit_code == 2
    assert "--format" in result.output and not list(tmp_path.iterdir())


def test_points_scores_a_generator_folder(tmp_path: Path, synthetic_dir: Path) -> None:
    out = tmp_path / "points.csv"
    result = runner.invoke(
        app, ["points", str(synthetic_dir), "--out", str(out), "--id", "lead_id", "--json"]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["lead_id", "fit_points", "engagement_points", "points", "mql"]
    assert frame["fit_points"].between(0, 50).all() and frame["engagement_points"].between(0, 50).all()
