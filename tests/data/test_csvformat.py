"""European CSVs (semicolons, decimal commas, dots between thousands) are read as their author wrote
them, by every command, and validate says how; numbers that read either way are named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.csvformat import CsvFormat, detect
from leadscore.data.sources import read_table
from tests.helpers import Trained, make_leads


def _european(leads: pd.DataFrame, path: Path) -> None:
    """As Excel saves "CSV" in most of Europe: ';' between cells, ',' for decimals, '.' for thousands."""
    out = leads.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]) or pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: (
                    ""
                    if pd.isna(v)
                    else f"{v:,.3f}".rstrip("0").rstrip(".").translate(str.maketrans(",.", ".,"))
                )
            )
    out.to_csv(path, sep=";", index=False)


def test_a_european_export_reads_the_numbers_its_author_wrote(tmp_path: Path) -> None:
    leads = make_leads(400, 17, fault_rate=0.0)
    leads["employee_count"] = leads["employee_count"] * 3  # some above 1,000: written 1.919
    plain, european = tmp_path / "plain.csv", tmp_path / "european.csv"
    leads.to_csv(plain, index=False)
    _european(leads, european)
    text = european.read_text()
    assert ";" in text.splitlines()[0] and any(
        "." in c and len(c.split(".")[-1]) == 3 for c in text.split(";")
    )
    found = detect(european)
    assert (found.sep, found.decimal, found.thousands) == (";", ",", ".")
    a, b = read_table(plain), read_table(european)
    for col in ("employee_count", "days_since_last_activity", "true_p_sql", "web_visits_30d"):
        np.testing.assert_allclose(b[col].astype(float), a[col].astype(float), atol=5e-4, err_msg=col)


def test_every_command_scores_a_european_export_as_the_plain_one(trained: Trained, tmp_path: Path) -> None:
    leads = make_leads(300, 18, fault_rate=0.0)
    plain, european = tmp_path / "plain.csv", tmp_path / "european.csv"
    leads.to_csv(plain, index=False)
    _european(leads, european)
    model = str(trained["model_path"])
    runner = CliRunner()
    for src, out in ((plain, "a.csv"), (european, "b.csv")):
        result = runner.invoke(app, ["score", str(src), "--model", model, "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    a, b = (pd.read_csv(tmp_path / out) for out in ("a.csv", "b.csv"))
    np.testing.assert_allclose(b["p_sql"], a["p_sql"], atol=2e-3)  # the file rounds to 3 decimals
    said = runner.invoke(app, ["validate", str(european), "--spec", "synthetic", "--json"])
    assert json.loads(said.stdout)["read_as"] == "semicolon-separated, decimal comma, '.' between thousands"


def test_numbers_that_read_either_way_are_named(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id;employees;score;label\n1;1.919;0,75;1\n2;2.250;0,5;0\n3;12;1;0\n")
    assert detect(path) == CsvFormat(";", ",", ".", ("employees",))
    result = CliRunner().invoke(app, ["validate", str(path), "--label", "label", "--json"])
    report = json.loads(result.stdout)
    (warned,) = [p for p in report["problems"] if p["check"] == "ambiguous_number"]
    assert warned["column"] == "employees" and "numbers like 1.919 read with ','" in warned["message"]
    assert read_table(path)["employees"].tolist() == [1919, 2250, 12]
    point = tmp_path / "p.csv"
    point.write_text("id;employees;score\n1;1.919;0.75\n2;250;0.5\n")  # decimal points: read as written
    assert detect(point) == CsvFormat(";", ".", None, ("employees",))
    assert read_table(point)["score"].tolist() == [0.75, 0.5]


def test_words_that_pandas_would_drop_are_read_as_written(tmp_path: Path) -> None:
    """'NA' is North America and 'None' an answer in a CRM field: a CSV keeps them as Parquet does,
    while empty cells and the unambiguous marks (N/A, NULL) are still missing, in every reader."""
    from leadscore.data.sources import iter_table

    frame = pd.DataFrame(
        {
            "region": ["NA", "EMEA", "APAC", "NA"],
            "tech_stack": ["None", "HubSpot", None, "Salesforce"],
            "employees": [12.0, None, 40.0, 7.0],
            "budget": ["N/A", "NULL", "10", ""],
        }
    )
    csv, parquet = tmp_path / "leads.csv", tmp_path / "leads.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    for read in (read_table(csv), pd.concat(list(iter_table(csv, chunk_rows=2)), ignore_index=True)):
        assert read["region"].tolist() == ["NA", "EMEA", "APAC", "NA"]
        assert read["tech_stack"].iloc[[0, 1, 3]].tolist() == ["None", "HubSpot", "Salesforce"]
        assert read["tech_stack"].isna().tolist() == [False, False, True, False]
        assert read["employees"].isna().tolist() == [False, True, False, False]
        assert pd.api.types.is_float_dtype(read["employees"])
        assert read["budget"].isna().tolist() == [True, True, False, True]
    assert read_table(parquet)["region"].tolist() == read_table(csv)["region"].tolist()
