"""One rule for lead ids on every path: kept as sent (ends trimmed, a whole number without ".0"), at
most 200 characters, refused at the door with one line naming the field, column or row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.features.values import MAX_ID_LENGTH, id_problem, lead_key
from leadscore.store.db import open_store
from leadscore.store.decisions import load_decisions
from tests.helpers import Trained, make_leads, private_env


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("sent", "key"),
    [
        (7, "7"),
        (7.0, "7"),  # a CSV column with gaps is read as floats
        (np.int64(12), "12"),
        ("lead-9.0", "lead-9.0"),  # text is never rewritten
        ("  A  B  ", "A  B"),  # ends trimmed, nothing else
        ("00042", "00042"),
        (None, ""),
        (float("nan"), ""),
    ],
)
def test_every_path_keys_an_id_the_same_way(sent: object, key: str) -> None:
    assert lead_key(sent) == key


def test_an_id_past_the_stores_column_is_a_problem() -> None:
    assert id_problem("x" * MAX_ID_LENGTH) is None
    assert id_problem("x" * 201) == "a lead id of 201 characters (at most 200)"


def test_feedback_import_keeps_ids_as_sent_and_purge_finds_them(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    export = tmp_path / "decisions.csv"
    pd.DataFrame(
        {
            "lead_id": ["lead-9.0", "lead-9", "  A  B  "],
            "decision": ["accepted", "rejected", "accepted"],
            "reason": [None, "not ICP", None],
            "decided_at": ["2026-03-02 09:30"] * 3,
        }
    ).to_csv(export, index=False)
    code, out = _cli("feedback", "import", str(export), "--store", store, "--json")
    assert code == 0 and json.loads(out)["new"] == 3, out  # lead-9.0 and lead-9 are two leads
    assert sorted(load_decisions(open_store(store))["lead_id"]) == ["A  B", "lead-9", "lead-9.0"]
    code, out = _cli("store", "purge", "--lead", "lead-9.0", "--store", store, "--json")
    assert code == 0 and json.loads(out)["deleted"]["decisions"] == 1
    code, out = _cli("store", "purge", "--lead", " A  B ", "--store", store, "--json")
    assert code == 0 and json.loads(out)["deleted"]["decisions"] == 1
    assert load_decisions(open_store(store))["lead_id"].tolist() == ["lead-9"]


def test_a_long_id_stops_feedback_import_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    export = tmp_path / "decisions.csv"
    pd.DataFrame(
        {"lead_id": ["ok", "q" * 250], "decision": ["accepted"] * 2, "decided_at": ["2026-03-02"] * 2}
    ).to_csv(export, index=False)
    code, out = _cli("feedback", "import", str(export), "--store", store)
    assert code == 2 and "Traceback" not in out
    assert out.strip() == (
        f"error: {export}: column 'lead_id', row 3: a lead id of 250 characters (at most 200)"
    )
    assert load_decisions(open_store(store)).empty


def test_a_long_id_stops_batch_scoring_in_one_line_and_writes_nothing(
    trained: Trained, tmp_path: Path
) -> None:
    leads = make_leads(50, 3, fault_rate=0.0)
    leads["lead_id"] = leads["lead_id"].astype(str)
    leads.loc[leads.index[40], "lead_id"] = "w" * 201
    data, out = tmp_path / "leads.csv", tmp_path / "scored.csv"
    leads.to_csv(data, index=False)
    with private_env({**trained["env"], "LEADSCORE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"}):
        code, said = _cli(
            "score", str(data), "--model", str(trained["model_path"]), "--out", str(out), "--log"
        )
    assert code == 2 and "Traceback" not in said
    assert f"{data}: column 'lead_id', row 42: a lead id of 201 characters (at most 200)" in said
    assert not out.exists()


def test_a_value_past_its_store_column_is_refused_alike_on_both_databases(
    tmp_path: Path, database_url: str
) -> None:
    export = tmp_path / "decisions.csv"
    pd.DataFrame(
        {
            "lead_id": ["1", "2"],
            "decision": ["accepted"] * 2,
            "decided_at": ["2026-03-02"] * 2,
            "rep": ["ana", "r" * 201],
        }
    ).to_csv(export, index=False)
    code, out = _cli("feedback", "import", str(export), "--store", database_url)
    assert code == 2 and out.strip() == f"error: {export}: column 'rep', row 3: longer than 200 characters"
    assert load_decisions(open_store(database_url)).empty
