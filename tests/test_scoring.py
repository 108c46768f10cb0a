"""Batch scoring from the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.scoring.bundle import ModelBundle
from tests.helpers import Trained, make_leads

runner = CliRunner()


def test_score_writes_id_score_flag_grade_and_reasons(trained: Trained, tmp_path: Path) -> None:
    leads = make_leads(1200, 91).assign(crm_note="ignored")
    src = tmp_path / "export.csv"
    leads.to_csv(src, index=False)
    out = tmp_path / "scored.csv"
    result = runner.invoke(
        app,
        [
            "score",
            str(src),
            "--model",
            str(trained["model_path"]),
            "--out",
            str(out),
            "--explain",
            "3",
            "--chunk-rows",
            "250",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == [
        "lead_id",
        "p_sql",
        "mql",
        "grade",
        "reason_1",
        "reason_2",
        "reason_3",
        "fit_band",
        "fit_log_odds",
        "engagement_band",
        "engagement_log_odds",
        "p_sql_7d",
        "p_sql_30d",
        "expected_days_to_sql",
    ]
    assert len(frame) == len(leads) and frame["lead_id"].tolist() == leads["lead_id"].tolist()
    bundle = ModelBundle.load(trained["model_path"])
    scored = bundle.score_frame(leads)
    assert (frame["p_sql"].to_numpy() == scored.p_sql.round(6)).all()  # chunking changes nothing
    # The grade is the fit band and the engagement band; the parts are the service's log-odds.
    assert (frame["grade"] == frame["fit_band"] + frame["engagement_band"].astype(str)).all()
    np.testing.assert_array_equal(frame["fit_log_odds"].to_numpy(), scored.fit_part.round(4))
    np.testing.assert_array_equal(frame["engagement_log_odds"].to_numpy(), scored.engagement_part.round(4))
    assert frame["reason_1"].str.contains(r"\(\+|\(-", regex=True).all()


def test_missing_model_columns_are_reported_once(trained: Trained, tmp_path: Path) -> None:
    leads = make_leads(600, 92).drop(columns=["industry", "tech_stack"])
    src = tmp_path / "export.parquet"
    leads.to_parquet(src)
    out = tmp_path / "scored.parquet"
    result = runner.invoke(
        app,
        ["score", str(src), "--model", str(trained["model_path"]), "--out", str(out), "--chunk-rows", "100"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("model columns missing") == 1 and "industry, tech_stack" in result.output
    assert len(pd.read_parquet(out)) == len(leads)


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("missing_id", "id column 'lead_id' is missing"),
        ("bad_model", "model not found"),
        ("bad_suffix", "must end in .csv or .parquet"),
    ],
)
def test_scoring_mistakes_are_one_line_and_write_nothing(
    trained: Trained, tmp_path: Path, setup: str, needle: str
) -> None:
    leads = make_leads(300, 93)
    if setup == "missing_id":
        leads = leads.drop(columns=["lead_id"])
    src = tmp_path / "export.csv"
    leads.to_csv(src, index=False)
    model = str(trained["model_path"]) if setup != "bad_model" else str(tmp_path / "nope")
    out = tmp_path / ("scored.xlsx" if setup == "bad_suffix" else "scored.csv")
    result = runner.invoke(app, ["score", str(src), "--model", model, "--out", str(out)])
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".scored*"))


def test_changes_from_the_answers_rows_equal_changes_encoded_again(trained: Trained) -> None:
    """``changes`` given the rows the answer was encoded from gives what it gives encoding them
    again: leads with a moved field, with the same fields (an empty list) and without a previous."""
    import orjson

    from leadscore.scoring.changes import score_changes

    bundle = ModelBundle.load(trained["model_path"])
    leads = make_leads(40, 3)
    records = leads.to_dict(orient="records")
    before = []
    for i, record in enumerate(records):
        old = {f: record.get(f) for f in bundle.fields}
        if i % 3 == 0:  # a moved field (another lead's value of every field)
            old = {f: records[(i + 1) % len(records)].get(f) for f in bundle.fields}
        before.append(None if i % 3 == 2 else orjson.dumps(old, option=orjson.OPT_SERIALIZE_NUMPY).decode())
    _, scored = bundle.answers(records, explain=3)
    assert scored.inputs is not None
    given = score_changes(bundle, records, before, encoded=scored.inputs)
    again = score_changes(bundle, records, before)
    assert given == again
    assert any(c for c in given) and [] in given and None in given
