"""A team's own reasons to reject an MQL (spec key ``reject_reasons``), taken beside the standard five
by feedback import, the decision route and the pages, and refused in one line when they clash."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import UserError
from leadscore.service.decisions import DecisionError, checked_decision
from leadscore.spec import load_spec
from leadscore.spec.reasons import all_reasons
from leadscore.store.db import open_store
from leadscore.store.decisions import load_decisions, standard_reason

OWN = "reject_reasons: ['No budget', '  wrong   region ']\n"


def _spec(tmp_path: Path, body: str = OWN) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text("extends: synthetic\nname: team\n" + body)
    return path


def test_the_teams_reasons_are_taken_beside_the_standard_ones(tmp_path: Path) -> None:
    spec = load_spec(str(_spec(tmp_path)))
    assert spec.reject_reasons == ["No budget", "wrong region"]
    own = spec.reject_reasons
    assert standard_reason("no BUDGET", own) == "No budget" and standard_reason("Not ICP", own) == "not ICP"
    assert standard_reason("no budget") == "?"  # without the spec: not a standard reason
    made = checked_decision("L-1", {"decision": "reject", "reason": "Wrong Region"}, "Dana", own)
    assert made["reason"] == "wrong region"
    with pytest.raises(
        DecisionError, match="'too pricey' is not a standard reason .*No budget, wrong region"
    ):
        checked_decision("L-1", {"decision": "reject", "reason": "too pricey"}, "Dana", own)
    assert all_reasons(own)[-2:] == ["No budget", "wrong region"] and all_reasons()[0] == "not ICP"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            "reject_reasons: ['Duplicate']\n",
            "reject_reasons[0]: 'Duplicate' is given twice or is a standard reason",
        ),
        ("reject_reasons: ['a', 'A']\n", "reject_reasons[1]: 'A' is given twice"),
        (f"reject_reasons: ['{'x' * 40}']\n", "reject_reasons[0]: "),
        ("reject_reasons: ['  ']\n", "must have 1 to 32 characters"),
    ],
)
def test_a_clashing_reason_is_one_line(tmp_path: Path, body: str, said: str) -> None:
    with pytest.raises(UserError, match=said.replace("[", r"\[").replace("]", r"\]")):
        load_spec(str(_spec(tmp_path, body)))


def test_feedback_import_takes_the_specs_reasons_with_spec(tmp_path: Path) -> None:
    export = tmp_path / "decisions.csv"
    pd.DataFrame(
        {
            "lead_id": ["1", "2"],
            "decision": ["rejected", "rejected"],
            "reason": ["No budget", "duplicate"],
            "decided_at": ["2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"],
        }
    ).to_csv(export, index=False)
    store = f"sqlite:///{tmp_path}/store.db"
    runner = CliRunner()
    refused = runner.invoke(app, ["feedback", "import", str(export), "--store", store])
    assert (
        refused.exit_code == 2
        and "column 'reason', row 2: 'No budget' is not a standard reason" in refused.output
    )
    taken = runner.invoke(
        app, ["feedback", "import", str(export), "--store", store, "--spec", str(_spec(tmp_path))]
    )
    assert taken.exit_code == 0, taken.output
    assert sorted(load_decisions(open_store(store))["reason"]) == ["No budget", "duplicate"]
