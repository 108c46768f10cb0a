"""A flat export learns time to SQL too, from a column with the day each lead reached SQL
(``label.reached_at``: HubSpot's "Became a Sales Qualified Lead Date", Salesforce's ConvertedDate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.data.folders import stage_history
from leadscore.errors import UserError
from leadscore.modeling.dataset import candidate_fields, read_training_data
from leadscore.spec import DatasetSpec, LabelRule, load_spec


def _flat_spec() -> DatasetSpec:
    folder = load_spec("synthetic")
    label = LabelRule(column="sql_within_90d", positive=[1], negative=[0], reached_at="SQL Date")
    return folder.model_copy(update={"label": label, "tables": {}, "stages": None})


def _flat_export(folder: Path, tmp_path: Path) -> Path:
    """The folder's leads as one CSV, with the first SQL entry after each lead's scoring time."""
    spec = load_spec("synthetic")
    leads = pd.read_parquet(folder / "leads.parquet")
    history, _ = stage_history(folder, spec)
    sql = history[history["stage"] == "SQL"].merge(leads[["lead_id", "scored_at"]], on="lead_id")
    sql = sql[sql["entered_at"] >= sql["scored_at"]].groupby("lead_id")["entered_at"].min()
    leads["SQL Date"] = leads["lead_id"].map(sql).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    path = tmp_path / "flat.csv"
    leads.to_csv(path, index=False)
    return path


def test_a_flat_exports_sql_dates_give_what_the_status_history_gives(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    day = read_training_data(synthetic_dir, load_spec("synthetic"), None).windows["observed_until"]
    same_day = {"observed_until": day}  # a flat file's latest time is not the history's: give the day
    from_history = read_training_data(synthetic_dir, load_spec("synthetic").model_copy(update=same_day), None)
    flat = read_training_data(
        _flat_export(synthetic_dir, tmp_path), _flat_spec().model_copy(update=same_day), None
    )
    assert from_history.survival is not None and flat.survival is not None
    a = from_history.survival.frame["lead_id"].to_numpy()
    b = flat.survival.frame["lead_id"].to_numpy()
    common, ia, ib = np.intersect1d(a, b, return_indices=True)
    assert len(common) >= 0.95 * len(a)  # the same leads (the flat label is the generator's own)
    assert from_history.survival.obs.event.sum() > 100
    np.testing.assert_array_equal(from_history.survival.obs.event[ia], flat.survival.obs.event[ib])
    np.testing.assert_allclose(from_history.survival.obs.days[ia], flat.survival.obs.days[ib], atol=1e-6)
    fields, _ = candidate_fields(flat.frame, _flat_spec())
    assert "SQL Date" not in fields  # filled in after the outcome: never learned from


def test_labels_that_deny_their_sql_dates_are_left_out_of_the_time_head_and_said(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    path = _flat_export(synthetic_dir, tmp_path)
    frame = pd.read_csv(path)
    positives = frame.index[frame["sql_within_90d"] == 1][:7]
    frame.loc[positives, "SQL Date"] = None  # SQL, but the CRM lost the date
    frame.to_csv(path, index=False)
    data = read_training_data(path, _flat_spec(), None)
    assert any("left out 7 leads whose label and 'SQL Date' disagree" in note for note in data.notes)
    assert (
        data.survival is not None
        and not data.survival.frame["lead_id"].isin(frame.loc[positives, "lead_id"]).any()
    )


def test_a_missing_sql_date_column_is_named(synthetic_dir: Path, tmp_path: Path) -> None:
    path = _flat_export(synthetic_dir, tmp_path)
    pd.read_csv(path).drop(columns=["SQL Date"]).to_csv(path, index=False)
    with pytest.raises(
        UserError, match=r"column 'SQL Date' \(spec key label.reached_at\) is not in the leads"
    ):
        read_training_data(path, _flat_spec(), None)
