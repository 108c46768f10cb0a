"""Label maturity: a lead whose label window was still open on the export's day is not a "no"."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.maturity import MS_PER_DAY, export_day, label_windows, parse_observed_until
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.errors import UserError
from leadscore.modeling.dataset import read_training_data
from leadscore.spec import DatasetSpec, load_spec

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-01-01")


def _flat_spec(**extra: object) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {"name": "flat", "id": "id", "time": "scored", "label": {"column": "sql", "within_days": 30}, **extra}
    )


def _flat(days_before_export: list[float], labels: list[int], export: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(len(labels)),
            "scored": [export - d * DAY for d in days_before_export],
            "sql": labels,
        }
    )


def test_a_lead_is_open_until_its_window_ends_and_an_open_sql_is_still_left_out() -> None:
    export = T0 + 100 * DAY
    frame = _flat([60, 31, 29, 5, 5], [0, 0, 0, 1, 0], export)
    spec = _flat_spec(observed_until=export.to_pydatetime())
    day = export_day(frame, spec)
    assert day is not None and day.how == "spec key 'observed_until'"
    windows = label_windows(frame, frame["sql"].to_numpy(), spec, day)
    assert windows.closed.tolist() == [True, True, False, False, False]
    assert (windows.open_positive, windows.open_unknown) == (1, 2)


def test_the_export_day_defaults_to_the_latest_time_in_the_data_and_needs_a_time_column() -> None:
    frame = _flat([60, 10], [0, 0], T0 + 100 * DAY)
    day = export_day(frame, _flat_spec())
    assert day is not None and day.ms == frame["scored"].max().value // 1_000_000
    assert "column 'scored'" in day.how
    assert export_day(frame, _flat_spec(time=None)) is None  # no time: every label is taken as known
    none = label_windows(frame, frame["sql"].to_numpy(), _flat_spec(time=None), None)
    assert none.closed.all() and none.left_out == 0


def test_a_sales_decision_is_known_whatever_the_window() -> None:
    export = T0 + 100 * DAY
    frame = _flat([5, 5], [0, 1], export)
    spec = _flat_spec(observed_until=export.to_pydatetime())
    windows = label_windows(
        frame, frame["sql"].to_numpy(), spec, export_day(frame, spec), np.array([True, False])
    )
    assert windows.closed.tolist() == [True, False] and windows.open_positive == 1


@pytest.mark.parametrize(
    ("value", "end"),
    [
        ("2026-11-30", "2026-11-30T23:59:59.999"),
        (date(2026, 11, 30), "2026-11-30T23:59:59.999"),
        ("2026-11-30T12:00:00Z", "2026-11-30T12:00:00"),
    ],
)
def test_a_given_export_day_is_the_end_of_that_day(value: object, end: str) -> None:
    ms = parse_observed_until(value, "--observed-until")  # type: ignore[arg-type]  # str | date, as given
    assert ms == pd.Timestamp(end).value // 1_000_000


def test_an_unreadable_export_day_is_one_line_naming_where_it_came_from() -> None:
    with pytest.raises(UserError, match="--observed-until: 'last tuesday' is not a date"):
        parse_observed_until("last tuesday", "--observed-until")


@pytest.fixture(scope="module")
def cut_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A generated export taken a week after its last lead, and the same world uncut."""
    folder = tmp_path_factory.mktemp("cut")
    tables = generate(GeneratorConfig(leads=3000, seed=11, fault_rate=0.0))
    write_dataset(tables, folder)
    uncut = generate(GeneratorConfig(leads=3000, seed=11, fault_rate=0.0, observed_until="uncut"))
    return folder, {"cut": tables["leads"].to_pandas(), "uncut": uncut["leads"].to_pandas()}


def test_the_generator_writes_nothing_after_its_export_day(
    cut_folder: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    folder, leads = cut_folder
    cut_ms = leads["cut"]["scored_at"].max().value // 1_000_000 + 7 * MS_PER_DAY
    events = pd.read_parquet(folder / "events.parquet")
    stages = pd.read_parquet(folder / "stage_history.parquet")
    assert events["occurred_at"].max().value // 1_000_000 <= cut_ms
    assert stages["entered_at"].max().value // 1_000_000 <= cut_ms
    cut, uncut = leads["cut"], leads["uncut"]
    assert (cut["lead_id"] == uncut["lead_id"]).all()
    # The flat label says what was known on the export day; the truth is kept apart.
    assert (cut["sql_within_90d"] <= uncut["sql_within_90d"]).all()
    later = uncut["sql_within_90d"].astype(bool) & ~cut["sql_within_90d"].astype(bool)
    sql_at = cut["scored_at"] + pd.to_timedelta(cut["true_days_to_sql"], unit="D")
    assert later.sum() > 0 and (sql_at[later].astype("int64") // 1_000_000 > cut_ms - 1000).all()
    truth = cut["true_days_to_sql"]
    assert truth.notna().sum() == uncut["sql_within_90d"].sum()
    assert truth.dropna().between(0, 90).all()


def test_training_leaves_open_windows_out_and_says_so(
    cut_folder: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    folder, leads = cut_folder
    spec = load_spec("synthetic")
    data = read_training_data(folder, spec, None)
    windows = data.windows
    scored = leads["cut"]["scored_at"]
    recent = int((scored > scored.max() + 7 * DAY - 90 * DAY).sum())
    assert windows["open_positive"] + windows["open_unknown"] == recent > 0
    assert windows["open_positive"] > 0  # open leads that already reached SQL are left out too
    assert len(data.frame) == windows["closed"]
    assert any("window was still open" in n for n in data.notes)
    # Closed leads keep exactly the labels the uncut world gives them.
    truth = leads["uncut"].set_index("lead_id")["sql_within_90d"]
    kept = data.frame.set_index("lead_id").index
    assert (truth.loc[kept].to_numpy() == data.y).all()


def test_an_earlier_export_day_reads_no_later_stage_change(
    cut_folder: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    folder, leads = cut_folder
    early = leads["cut"]["scored_at"].quantile(0.5).normalize()
    spec = load_spec("synthetic").model_copy(update={"observed_until": early.date()})
    data = read_training_data(folder, spec, None)
    assert (data.frame["scored_at"] <= early + DAY).all()
    assert any("scored after the export day" in n for n in data.notes)
    assert (data.frame["scored_at"] + 90 * DAY <= early + DAY).all()  # only closed windows


def test_the_commands_take_an_export_day_and_refuse_a_bad_one(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["generate", "--leads", "50", "--out", str(tmp_path / "g"), "--observed-until", "soon"]
    )
    said = "--observed-until: 'soon' is not a date (expected a date like 2026-11-30 or an ISO timestamp)"
    assert result.exit_code == 2 and said in result.output and "Traceback" not in result.output
    result = runner.invoke(
        app,
        ["generate", "--leads", "200", "--out", str(tmp_path / "g"), "--json", "--observed-until", "uncut"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["train", str(tmp_path / "g"), "--spec", "synthetic", "--observed-until", "yesterday-ish"]
    )
    assert result.exit_code == 2 and "--observed-until: 'yesterday-ish' is not a date" in result.output


def test_an_early_export_day_holds_no_lead_scored_after_it() -> None:
    tables = generate(GeneratorConfig(leads=1500, seed=5, fault_rate=0.0, observed_until="2024-09-30"))
    leads = tables["leads"].to_pandas()
    end = pd.Timestamp("2024-10-01")
    assert 0 < len(leads) < 1500 and (leads["scored_at"] < end).all()
    events = tables["events"].to_pandas()
    assert set(events["lead_id"]) <= set(leads["lead_id"]) and (events["occurred_at"] < end).all()
