"""One rule for dates, the column's own format detected and used on every path, said in every
command (issue 29, item 7)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.features import FeatureEncoder
from leadscore.features.values import date_warnings, dates_ms, parse_date, slash_day_first
from tests.helpers import Trained, make_leads

MAY_3 = pd.Timestamp("2024-05-03").value // 1_000_000
MARCH_5 = pd.Timestamp("2024-03-05").value // 1_000_000


def test_the_rule_and_a_column_that_says_otherwise() -> None:
    assert parse_date("05/03/2024") == MAY_3  # slashes: month first by the rule
    assert parse_date("05-03-2024") == MARCH_5  # dashes: day first
    assert parse_date("05/03/2024", day_first=True) == MARCH_5
    european = pd.Series(["25/03/2024", "05/03/2024", None, "2024-03-01"])
    assert slash_day_first(european) and not slash_day_first(pd.Series(["05/03/2024", "03/25/2024"]))
    assert dates_ms(european)[1] == MARCH_5  # the column's own 25/03 decides for 05/03
    assert dates_ms(pd.Series(["05/03/2024", "12/31/2024"]))[0] == MAY_3


def test_a_time_with_no_utc_equivalent_is_not_a_date() -> None:
    """Year 1 a minute east of UTC is before the first instant a date can hold: not a date (the
    API's fuzzer sent it as an event time and got a 500)."""
    assert math.isnan(parse_date("0001-01-01T00:00:00+00:01"))
    assert math.isnan(parse_date("9999-12-31T23:59:59-00:01"))
    assert parse_date("0001-01-02T00:00:00+00:01") < 0


def test_the_encoder_keeps_the_training_columns_order_for_every_later_lead() -> None:
    train = pd.DataFrame({"signup": ["25/03/2024", "01/02/2024", "14/11/2023"] * 20, "x": range(60)})
    enc = FeatureEncoder.fit(train, ["signup", "x"], kinds={"signup": "date", "x": "numeric"})
    assert enc.day_first == ["signup"]
    again = FeatureEncoder.from_dict(enc.to_dict())
    assert again.reads_day_first("signup")
    one = again.encode_record({"signup": "05/03/2024", "x": 1})  # alone it looks month first
    many = again.transform(pd.DataFrame({"signup": ["05/03/2024"], "x": [1]}))
    month = again.feature_names.index("signup__month")
    assert one[month] == many[0, month] == 3  # March, as the column was written


def test_every_command_says_what_it_made_of_the_dates(trained: Trained, tmp_path: Path) -> None:
    leads = make_leads(300, 12, fault_rate=0.0)
    leads["scored_at"] = pd.to_datetime(leads["scored_at"]).dt.strftime("%m/%d/%Y %H:%M")
    leads.loc[leads.index[:7], "scored_at"] = "someday"
    path = tmp_path / "leads.csv"
    leads.to_csv(path, index=False)
    said = date_warnings(pd.read_csv(path), ["scored_at"])
    assert said[0] == "column 'scored_at': 7 values are not dates (read as missing)"
    runner = CliRunner()
    validated = json.loads(
        runner.invoke(app, ["validate", str(path), "--spec", "synthetic", "--json"]).stdout
    )
    found = {p["check"]: p for p in validated["problems"] if p["column"] == "scored_at"}
    assert found["unparseable_date"]["count"] == 7
    scored = runner.invoke(
        app, ["score", str(path), "--model", str(trained["model_path"]), "--out", str(tmp_path / "s.csv")]
    )
    assert (
        scored.exit_code == 0
        and "column 'scored_at': 7 values are not dates (read as missing)" in scored.output
    )
    # Days past the 12th appear in second place: the column says month first itself, nothing to add.
    assert not any("slash dates" in line for line in said)


def test_score_counts_unreadable_dates_as_the_model_reads_them(trained: Trained, tmp_path: Path) -> None:
    """A file whose scoring times are day first (25/03/2024) against a model that reads that column
    month first: the count says what the model made of them, not what the file alone suggests."""
    leads = make_leads(120, 13, fault_rate=0.0)
    leads["scored_at"] = pd.to_datetime(leads["scored_at"]).dt.strftime("%d/%m/%Y %H:%M")
    path = tmp_path / "leads.csv"
    leads.to_csv(path, index=False)
    readable = pd.Series(pd.to_datetime(leads["scored_at"], format="%d/%m/%Y %H:%M").dt.day <= 12)
    scored = CliRunner().invoke(
        app, ["score", str(path), "--model", str(trained["model_path"]), "--out", str(tmp_path / "s.csv")]
    )
    assert scored.exit_code == 0, scored.output
    assert (
        f"column 'scored_at': {int((~readable).sum())} values are not dates (read as missing)"
        in scored.output
    )
