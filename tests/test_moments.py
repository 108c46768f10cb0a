"""Several scoring moments per lead (``moments: {stages: [MQL]}``): a recycled lead that becomes an
MQL again is scored again, with its features as of that moment and its label counted from it; all
moments of a lead stay on one side of the split; scoring reads each lead once, at its latest moment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.data.folders import read_leads
from leadscore.data.moments import MOMENT_OF
from leadscore.data.synthetic import write_dataset
from leadscore.features.rollups import declared_rollups
from leadscore.modeling.dataset import read_training_data, split_indices
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.contract import load_contract
from leadscore.spec import DatasetSpec, load_spec
from tests.helpers import make_tables

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("moments")
    write_dataset(make_tables(4000, 5, fault_rate=0.0, observed_until="uncut"), root / "data")
    path = root / "moments.yaml"
    path.write_text(
        yaml.safe_dump({"extends": "synthetic", "name": "mql-moments", "moments": {"stages": ["MQL"]}})
    )
    history = pd.read_parquet(root / "data" / "stage_history.parquet")
    return {"folder": root / "data", "spec": load_spec(str(path)), "history": history}


def _expected(history: pd.DataFrame) -> pd.DataFrame:
    """Every MQL entry with its label from the history: SQL entered after it, within 90 days."""
    mql = history[history["stage"] == "MQL"].sort_values(["lead_id", "entered_at"], kind="stable")
    mql = mql.assign(n=mql.groupby("lead_id").cumcount() + 1)
    sql = history[history["stage"] == "SQL"][["lead_id", "entered_at"]].rename(
        columns={"entered_at": "sql_at"}
    )
    pairs = mql.merge(sql, on="lead_id", how="left")
    days = (pairs["sql_at"] - pairs["entered_at"]).dt.total_seconds() * 1000 / DAY_MS
    pairs["hit"] = (days > 0) & (days <= 90)
    pairs["past"] = days <= 0
    out = pairs.groupby(["lead_id", "n", "entered_at"], as_index=False).agg(
        hit=("hit", "any"), past=("past", "any")
    )
    out["row_id"] = out["lead_id"].astype(str) + "#" + out["n"].astype(str)
    return out


def test_each_mql_entry_is_a_row_with_its_own_label_and_features(export: dict[str, Any]) -> None:
    spec: DatasetSpec = export["spec"]
    data = read_training_data(export["folder"], spec, None)
    frame = data.frame.assign(y=data.y).set_index("lead_id")
    expected = _expected(export["history"]).set_index("row_id")
    recycled = expected[expected["n"] == 2]
    assert len(recycled) >= 10  # the generator recycles some MQLs into a second one
    both = [r for r in recycled.index if r in frame.index and r.replace("#2", "#1") in frame.index]
    assert len(both) >= 10
    for row in expected.index.intersection(frame.index):
        assert frame.loc[row, "y"] == int(expected.loc[row, "hit"]), row  # counted from its own moment
        assert pd.Timestamp(frame.loc[row, "scored_at"]) == expected.loc[row, "entered_at"]
    # a lead already an SQL at a moment has no label for it (left out), like a lead scored late
    assert not set(expected.index[expected["past"] & ~expected["hit"]]) & set(frame.index)
    assert frame.loc[both, MOMENT_OF].nunique() == len(both)
    # features as of each moment: the engine over the lead's events at that moment's time
    events = pd.read_parquet(export["folder"] / "events.parquet")
    lead = int(frame.loc[both[0], MOMENT_OF])
    anchors = pd.DataFrame(
        {
            "lead_id": [1, 2],
            "t": [frame.loc[both[0].replace("#2", "#1"), "scored_at"], frame.loc[both[0], "scored_at"]],
        }
    )
    own = events[events["lead_id"] == lead].assign(lead_id=1)
    own = pd.concat([own, own.assign(lead_id=2)])
    direct = declared_rollups(
        own,
        anchors,
        spec.declared,
        id_col="lead_id",
        time_col="t",
        event_id="lead_id",
        event_time="occurred_at",
        event_type="event_type",
    )
    for k, row in enumerate([both[0].replace("#2", "#1"), both[0]]):
        for name in spec.declared:
            assert np.isclose(float(frame.loc[row, name]), float(direct.iloc[k][name]), equal_nan=True), (
                row,
                name,
            )


def test_the_split_keeps_a_leads_moments_together_and_training_learns_every_moment(
    export: dict[str, Any],
) -> None:
    spec: DatasetSpec = export["spec"]
    data = read_training_data(export["folder"], spec, None)
    split = split_indices(data.frame, data.y, spec, 0)
    side = np.empty(len(data.y), dtype=object)
    for name, rows in (("fit", split.fit), ("valid", split.valid), ("test", split.test)):
        side[rows] = name
    per_lead = pd.Series(side).groupby(data.frame[MOMENT_OF].to_numpy()).nunique()
    assert (per_lead == 1).all()
    result = train_model(export["folder"], spec, TrainOptions(contract=load_contract()[0], search_trials=0))
    assert result.bundle.meta.learned_from is not None
    assert result.bundle.meta.learned_from["rows"] == len(data.y) > data.frame[MOMENT_OF].nunique()
    assert MOMENT_OF not in result.bundle.fields and "__moment_no" not in result.bundle.fields


def test_scoring_reads_each_lead_once_at_its_latest_moment(export: dict[str, Any]) -> None:
    spec: DatasetSpec = export["spec"]
    scored = read_leads(export["folder"], spec)
    leads = pd.read_parquet(export["folder"] / "leads.parquet")
    assert len(scored) == len(leads) and scored["lead_id"].tolist() == leads["lead_id"].tolist()
    latest = _expected(export["history"]).groupby("lead_id")["entered_at"].max()
    at = scored.set_index("lead_id")["scored_at"]
    for lead in latest.index[:50]:
        assert pd.Timestamp(at.loc[lead]) == latest.loc[lead]
    never = sorted(set(leads["lead_id"]) - set(latest.index))[:20]
    own = leads.set_index("lead_id")["scored_at"]
    for lead in never:  # never an MQL: its own scoring time
        assert pd.Timestamp(at.loc[lead]) == pd.Timestamp(own.loc[lead])


def test_moments_without_a_status_history_is_one_line(tmp_path: Path) -> None:
    from leadscore.errors import UserError

    write_dataset(make_tables(300, 6, fault_rate=0.0), tmp_path)
    (tmp_path / "stage_history.parquet").unlink()
    doc = {
        "extends": "synthetic",
        "name": "m",
        "moments": {"stages": ["MQL"]},
        "label": {"stages": None, "column": "sql_within_90d"},
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="tables.stages"):
        read_training_data(tmp_path, load_spec(str(path)), None)


def test_moments_at_a_stage_no_lead_enters_is_one_line(export: dict[str, Any], tmp_path: Path) -> None:
    from leadscore.errors import UserError

    path = tmp_path / "none.yaml"
    path.write_text(
        yaml.safe_dump({"extends": "synthetic", "name": "none", "moments": {"stages": ["Webinar Lead"]}})
    )
    with pytest.raises(
        UserError, match=r"spec key 'moments.stages': no lead .* enters Webinar Lead in stage_history"
    ):
        read_training_data(export["folder"], load_spec(str(path)), None)


def test_a_status_historys_stages_are_folded_one_way_for_labels_moments_and_accounts() -> None:
    """Trimmed and case-folded, each distinct value once; a missing stage is "" (never a stage)."""
    from leadscore.data.history import folded_stages

    column = pd.Series([" MQL", "mql ", None, "Sales Qualified", "MQL", np.nan, "ß"], dtype="str")
    assert folded_stages(column).tolist() == ["mql", "mql", "", "sales qualified", "mql", "", "ss"]
    numbers = pd.Series([1, 2, 1], dtype=object)
    assert folded_stages(numbers).tolist() == ["1", "2", "1"]
