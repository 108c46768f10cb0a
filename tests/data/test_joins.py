"""Ids that join in form only are joined; a table whose ids join no lead stops every command."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.folders import read_leads
from leadscore.data.joins import ids_like
from leadscore.spec import load_spec
from tests.helpers import Trained


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_ids_in_another_form_are_put_in_the_leads_form() -> None:
    numbers = pd.Series([7, 8, 9])
    assert ids_like(pd.Series([" 7", "9", "9"]), numbers).tolist() == [7, 9, 9]
    assert ids_like(pd.Series(["7", "L-9"]), numbers).isna().tolist() == [False, True]  # joins no lead
    text = pd.Series(["7", "8"], dtype="string")
    assert ids_like(pd.Series([7.0, 8.0]), text).tolist() == ["7", "8"]
    same = pd.Series([1, 2])
    assert ids_like(same, numbers) is same  # the same form: untouched


def _copy_with_events_ids(synthetic_dir: Path, tmp_path: Path, ids: str) -> Path:
    folder = tmp_path / ids
    shutil.copytree(synthetic_dir, folder)
    events = pd.read_parquet(folder / "events.parquet")
    events["lead_id"] = ("L-" if ids == "foreign" else "") + events["lead_id"].astype(str)
    events.to_parquet(folder / "events.parquet")
    return folder


def test_text_ids_against_numeric_leads_give_the_same_features(synthetic_dir: Path, tmp_path: Path) -> None:
    spec = load_spec("synthetic")
    texts = _copy_with_events_ids(synthetic_dir, tmp_path, "text")
    a, b = read_leads(synthetic_dir, spec), read_leads(texts, spec)
    engagement = list(spec.declared)
    assert np.nansum(a[engagement].to_numpy(dtype=float)) > 0
    np.testing.assert_array_equal(a[engagement].to_numpy(), b[engagement].to_numpy())


def test_an_activity_log_that_joins_no_lead_stops_train_and_score(
    synthetic_dir: Path, tmp_path: Path, trained: Trained
) -> None:
    foreign = _copy_with_events_ids(synthetic_dir, tmp_path, "foreign")
    line = "events.parquet: no row's id matches a lead's id in the leads table: check spec key 'events.id'"
    code, out = _cli("validate", str(foreign), "--spec", "synthetic")
    assert code == 2 and line in out
    code, out = _cli("train", str(foreign), "--spec", "synthetic")
    assert code == 2 and line in out and "Traceback" not in out
    code, out = _cli(
        "score", str(foreign), "--model", str(trained["model_path"]), "--out", str(tmp_path / "s.csv")
    )
    assert code == 2 and line in out and not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("kind", ["stages"])
def test_a_status_history_that_joins_no_lead_stops_training(
    synthetic_dir: Path, tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "f"
    shutil.copytree(synthetic_dir, folder)
    history = pd.read_parquet(folder / "stage_history.parquet")
    history["lead_id"] = "S-" + history["lead_id"].astype(str)
    history.to_parquet(folder / "stage_history.parquet")
    code, out = _cli("train", str(folder), "--spec", "synthetic")
    assert (
        code == 2
        and f"stage_history.parquet: no row's id matches a lead's id in the leads table: check spec key '{kind}.id'"
        in out
    )
