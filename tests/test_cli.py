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


def _bank_export(path: Path, n: int = 4000) -> None:
    """A telemarketing-like export whose call duration is known only after the call (a leak)."""
    import numpy as np

    rng = np.random.default_rng(5)
    age = rng.integers(18, 90, n)
    job = rng.choice(["admin.", "technician", "services", "management", "retired", "student"], n)
    latent = 0.02 * (age - 40) + np.where(np.isin(job, ["retired", "student"]), 0.8, 0)
    y = rng.random(n) < 1 / (1 + np.exp(-(latent - 1.5)))
    duration = np.round(rng.gamma(2, 120, n) * np.where(y, 2.2, 1.0))
    frame = pd.DataFrame({"id": np.arange(n), "age": age, "job": job, "duration": duration})
    frame.assign(y=np.where(y, "yes", "no")).to_csv(path, index=False)


def test_train_keep_and_promote_from_the_command_line(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from leadscore.scoring.bundle import ModelBundle
    from tests.helpers import mlflow_env, private_env

    data = tmp_path / "bank.csv"
    _bank_export(data)
    flags = ["train", str(data), "--label", "y", "--positive", "yes", "--id", "id", "--json"]
    with private_env({**mlflow_env(tmp_path), "LEADSCORE_SEARCH_TRIALS": "0"}):
        runs = []
        for extra in (
            [],
            ["--keep", "duration", "--promote"],
            ["--seed", "3", "--no-finalize", "--refit-seeds", "1"],
        ):
            result = CliRunner().invoke(app, [*flags, *extra])
            assert result.exit_code == 0, result.output
            payload = json.loads(result.stdout)  # the champion's folder changes with --promote: read now
            runs.append({**payload, "fields": ModelBundle.load(payload["model_path"]).fields})
        client = MlflowClient()
        champion = client.get_model_version_by_alias(runs[0]["registered_model"], "champion").version
    guarded, kept, third = runs
    assert guarded["leakage_suspects"] == ["duration"] and "duration" in guarded["excluded_columns"]
    assert "duration" not in guarded["fields"]
    # --keep: the user's decision wins over the guard, and the run says so.
    assert "duration" in kept["fields"]
    assert any("kept 'duration'" in note for note in kept["notes"])
    # --promote: the second model is the champion at once; the third, trained without it, is not.
    assert kept["registered_version"] == "2" and "champion" in kept["aliases"]
    assert "champion" not in third["aliases"] and str(champion) == "2"
    # The shipped model learns from every labelled lead unless --no-finalize keeps the evaluated one.
    assert guarded["learned_from"]["finalized"] and guarded["learned_from"]["rows"] == 4000
    assert guarded["cutoff"]["measured_on"] == "out-of-fold scores of 4,000 labelled leads"
    assert not third["learned_from"]["finalized"] and third["learned_from"]["rows"] == third["n_train"]
    assert third["learned_from"]["why"] == "--no-finalize" and third["cutoff"]["measured_on"] == "test leads"
    # A small export's booster averages three seeds' fits unless --refit-seeds says otherwise.
    assert guarded["learned_from"]["seeds"] == 3 and third["learned_from"]["seeds"] == 1
