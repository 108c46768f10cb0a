"""The account reports in headless Chromium: the qualified accounts of a day, best first, and one
account for its owner (its buying group person by person, the roles missing, its timeline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from tests.helpers import OpenPage, private_env, train_accounts_spec
from tests.reports.test_html import assert_clean

pytestmark = pytest.mark.e2e
DAY = "2025-03-01"


@pytest.fixture(scope="module")
def account_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("account-reports")
    data = root / "data"
    write_dataset(generate(GeneratorConfig(leads=3000, seed=8, accounts=True)), data)
    env, payload = train_accounts_spec(data, root, "--level", "account")
    scores = root / "scores.csv"
    model = payload["model_path"]
    with private_env(env):
        done = CliRunner().invoke(
            app, ["score", str(data), "--model", model, "--as-of", DAY, "--out", str(scores)]
        )
    assert done.exit_code == 0, done.output
    return {
        "data": data,
        "env": env,
        "model": model,
        "scores": pd.read_csv(scores, dtype={"account_id": str}, keep_default_na=False),
    }


def test_the_qualified_accounts_of_a_day_best_first(
    account_model: dict[str, Any], tmp_path: Path, open_page: OpenPage
) -> None:
    out = tmp_path / "accounts.html"
    args = [
        "report",
        "queue",
        "--level",
        "account",
        "--model",
        account_model["model"],
        "--data",
        str(account_model["data"]),
    ]
    with private_env(account_model["env"]):
        result = CliRunner().invoke(
            app, [*args, "--as-of", DAY, "--limit", "25", "--out", str(out), "--json"]
        )
    assert result.exit_code == 0, result.output
    page = open_page(out)
    assert_clean(page)
    scores = account_model["scores"]
    qualified = scores.loc[scores["qualified"]].sort_values("p_opportunity", ascending=False, kind="stable")
    assert json.loads(result.stdout)["qualified"] == len(qualified) > 25
    assert "Qualified accounts" in page.text and f"Showing the top 25 of {len(qualified)}" in page.text
    ranked = [line.split("\t") for line in page.text.splitlines() if line[:1].isdigit() and "\t" in line]
    assert [r[1] for r in ranked[:25]] == qualified["account_id"].head(25).tolist()


def test_one_account_for_its_owner(
    account_model: dict[str, Any], tmp_path: Path, open_page: OpenPage
) -> None:
    from leadscore.data.accounts import read_account_tables
    from leadscore.spec import load_spec

    scores = account_model["scores"]
    chosen = scores.loc[scores["roles_missing"] != ""].sort_values("contacts_engaged").iloc[-1]
    out = tmp_path / "account.html"
    args = ["report", "account", "--model", account_model["model"], "--data", str(account_model["data"])]
    with private_env(account_model["env"]):
        result = CliRunner().invoke(
            app, [*args, "--account-id", chosen["account_id"], "--as-of", DAY, "--out", str(out)]
        )
        wrong = CliRunner().invoke(app, [*args, "--account-id", "no-such", "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 0, result.output
    assert wrong.exit_code == 2 and "--account-id: no account 'no-such'" in wrong.output
    page = open_page(out)
    assert_clean(page)
    text = page.text
    assert f"Account {chosen['account_id']}" in text and f"{chosen['p_opportunity']:.1%}" in text
    assert ("qualified account" in text) == bool(chosen["qualified"])
    missing = chosen["roles_missing"].replace("_", " ")
    assert f"No one from {missing} yet." in text
    # every person the matcher gives the account is listed, and only they appear in the timeline
    tables = read_account_tables(account_model["data"], load_spec("synthetic-accounts"))
    matches = tables.matches.frame
    people = set(matches.loc[matches["account_id"] == chosen["account_id"], "lead_id"])
    body = text.split("The buying group", 1)[1].split("Timeline", 1)
    assert all(person in body[0] for person in people)
    timeline = [line.split("\t") for line in body[1].splitlines() if line[:2] == "20" and "\t" in line]
    assert 0 < len(timeline) <= 30
    assert all(row[0][:10] <= DAY and row[1] in people for row in timeline)
