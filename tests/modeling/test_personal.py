"""Personal and identifying fields are never learned from by default; validate's findings and a
baseline that wins are said in train's notes and on the card (issue 30)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.personal import email_column, personal_reason
from leadscore.modeling.evaluate import baseline_warnings
from leadscore.scoring.bundle import ModelBundle
from tests.helpers import make_leads, mlflow_env, private_env

FIRST = ["Ana", "Ben", "Chloe", "Dev", "Eva", "Finn", "Gia", "Hugo"]
LAST = ["Silva", "Meyer", "Rossi", "Khan", "Novak", "Berg"]


def _hubspot_like(n: int, seed: int) -> pd.DataFrame:
    """A flat contacts export as HubSpot writes it: names, company, phone and site beside the fields."""
    rng = np.random.default_rng(seed)
    leads = make_leads(n, seed, fault_rate=0.0)
    frame = pd.DataFrame(
        {
            "Record ID": leads["lead_id"],
            "First Name": rng.choice(FIRST, n),
            "Last Name": rng.choice(LAST, n),
            "Company Name": leads["company_name"],
            "Phone Number": [
                f"+1 (555) {rng.integers(100, 999)}-{rng.integers(1000, 9999)}" for _ in range(n)
            ],
            "Website URL": [f"https://www.{c.lower().replace(' ', '')}.com" for c in leads["company_name"]],
            "Email": leads["email"],
            "Job Title": leads["job_title"],
            "Industry": leads["industry"],
            "Employees": leads["employee_count"],
            "Page Views": leads["web_visits_30d"],
            "Pricing Views": leads["pricing_page_views_total"],
            "Demo": leads["demo_requests"],
            "SQL": leads["sql_within_90d"],
        }
    )
    repeat = frame.sample(frac=0.05, random_state=seed)  # the same contact exported twice
    return pd.concat([frame, repeat.assign(**{"Record ID": repeat["Record ID"] + 10**7})], ignore_index=True)


def test_personal_fields_are_found_by_name_and_by_value() -> None:
    frame = _hubspot_like(300, 3)
    found = {c: personal_reason(c, frame[c]) for c in frame.columns}
    assert {c for c, why in found.items() if why} == {
        "First Name", "Last Name", "Company Name", "Phone Number", "Website URL",
    }  # fmt: skip
    phones = pd.Series([f"+44 20 7946 {i:04d}" for i in range(50)])
    assert personal_reason("Contact channel", phones) == "personal data: phone numbers"
    assert email_column(frame, None) == "Email" and email_column(frame, "Email") == "Email"


def test_a_flat_export_trained_with_flags_leaves_people_out_and_says_what_validate_found(
    tmp_path: Path,
) -> None:
    path = tmp_path / "contacts.csv"
    _hubspot_like(4000, 4).to_csv(path, index=False)
    with private_env({**mlflow_env(tmp_path), "LEADSCORE_SEARCH_TRIALS": "0"}):
        result = CliRunner().invoke(
            app, ["train", str(path), "--label", "SQL", "--id", "Record ID", "--json"]
        )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    fields = ModelBundle.load(payload["model_path"]).fields
    for column in ("First Name", "Last Name", "Company Name", "Phone Number", "Website URL", "Email"):
        assert column not in fields and column in payload["excluded_columns"], column
    assert payload["excluded_columns"]["First Name"] == "personal data: a person's name"
    assert {"Job Title", "Industry", "Employees", "Pricing Views"} <= set(fields)
    assert any(n.startswith("left out 200 duplicate leads") for n in payload["notes"]), payload["notes"]
    said = [n for n in payload["notes"] if n.startswith("validation: ")]
    assert any("200 rows repeat a contact" in n and "'Email'" in n for n in said), said


def test_a_baseline_that_ranks_better_is_said() -> None:
    said = baseline_warnings(
        {"roc_auc": 0.729},
        {"logistic_regression": {"roc_auc": 0.740}, "points_model": {"roc_auc": 0.70}},
    )
    assert said == [
        "warning: the model's test ROC AUC 0.729 is below logistic regression's 0.740 on the same test "
        "leads: check the fields it learned from and the data's problems before trusting it"
    ]
    assert baseline_warnings({"roc_auc": 0.8}, {"plain_lightgbm": {"roc_auc": 0.79}}) == []
