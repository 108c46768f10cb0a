"""Leads matched to accounts: by their own account column, email domain, company name; ambiguous
keys match nobody; the command writes the matches and ``validate`` counts them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.matching import company_key, email_domain, parent_domains, web_domain
from leadscore.spec import merged


@pytest.mark.parametrize(
    ("written", "domain"),
    [
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("http://acme.co.uk:8080", "acme.co.uk"),
        ("ACME.COM/", "acme.com"),
        ("www.acme.io", "acme.io"),
        ("  ftp://files.acme.com  ", "files.acme.com"),
        ("not a site", None),
        ("", None),
        (None, None),
    ],
)
def test_a_website_is_read_as_its_domain(written: Any, domain: str | None) -> None:
    assert web_domain(written) == domain


def test_an_address_gives_its_domain_and_a_sub_domain_its_parents() -> None:
    assert email_domain("Dana.Ortiz@EU.Acme.com ") == "eu.acme.com"
    assert email_domain("no address") is None
    assert parent_domains("eu.acme.com") == ["eu.acme.com", "acme.com"]
    assert parent_domains("acme.co.uk") == ["acme.co.uk"]  # never the public suffix co.uk
    assert parent_domains("sales.acme.co.uk") == ["sales.acme.co.uk", "acme.co.uk"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Smith & Sons, Inc.", "smith and sons"),
        ("Globex Corporation", "GLOBEX"),
        ("Initech GmbH", "initech"),
        ("Umbrella S.A.", "Umbrella"),
        ("Hooli plc", "hooli"),
        ("Stark Industries Ltd.", "stark industries"),
        ("O'Reilly Media LLC", "oreilly media"),
    ],
)
def test_company_names_are_compared_without_case_punctuation_or_legal_form(a: str, b: str) -> None:
    assert company_key(a) == company_key(b) is not None


def test_a_column_is_read_as_each_value_is() -> None:
    """The vectorised readers give what the one-value readers give (the service reads one lead)."""
    from leadscore.data.matching import company_keys, email_domains

    names = pd.Series(
        [
            "Smith & Sons, Inc.",
            "Umbrella S.A.",
            "Company",
            "Acme Co Inc",
            "O'Reilly Media LLC",
            None,
            "  ",
            "and",
        ]
    )
    assert company_keys(names).tolist() == [company_key(v) for v in names]
    emails = pd.Series(["Dana@EU.Acme.com ", "x@gmail.com", "no address", None, "a@b@corp.io", "@"])
    assert email_domains(emails).tolist() == [email_domain(v) for v in emails]


def test_a_legal_form_alone_is_kept_as_the_name() -> None:
    assert company_key("Company") == "company"
    assert company_key("Acme Holdings") != company_key("Acme")


LEADS = pd.DataFrame(
    {
        "Id": ["L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9"],
        "Email": [
            "a@acme.com",  # domain
            "b@eu.acme.com",  # sub-domain -> parent
            "c@gmail.com",  # free mail: falls to the company name
            "d@gmail.com",  # free mail, unknown company
            "e@twin.com",  # two accounts share the domain: ambiguous
            "f@other.org",  # named by its own account column
            None,
            "h@nowhere.net",
            "i@initech.de",
        ],
        "Company": [
            "Acme",
            "ACME Inc",
            "Globex Corp.",
            "Freelance",
            "Twin",
            "Other",
            "Smith & Sons",
            "?",
            "x",
        ],
        "ConvertedAccountId": [None, None, None, None, None, "A4", None, "A99", None],
        "Title": [
            "VP Sales",
            "CTO",
            "Engineer",
            "CFO",
            "Director",
            "Analyst",
            "Head of IT",
            "Intern",
            "Buyer",
        ],
        "CreatedDate": ["2025-01-05"] * 9,
    }
)
ACCOUNTS = pd.DataFrame(
    {
        "Id": ["A1", "A2", "A3", "A4", "A5", "A6", "A7"],
        "Name": [
            "Acme Inc.",
            "Globex Corporation",
            "Twin A",
            "Other Ltd",
            "Twin B",
            "Smith and Sons",
            "Initech",
        ],
        "Website": [
            "https://www.acme.com",
            "globex.com",
            "http://twin.com",
            "other.org",
            "twin.com/",
            None,
            "initech.de",
        ],
        "Industry": ["Software"] * 7,
    }
)


def _spec_doc() -> dict[str, Any]:
    return {
        "name": "sfdc",
        "id": "Id",
        "time": "CreatedDate",
        "tables": {"leads": "Lead", "accounts": "Account"},
        "label": {"column": "IsConverted", "positive": [True]},
        "accounts": {
            "id": "Id",
            "lead_account": "ConvertedAccountId",
            "match": {"email": "Email", "company": "Company", "website": "Website"},
            "fit": ["Industry"],
            "roles": {"finance": {"Title": ["*CFO*", "*Finance*"]}},
        },
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "crm"
    data.mkdir()
    LEADS.to_csv(data / "Lead.csv", index=False)
    ACCOUNTS.to_csv(data / "Account.csv", index=False)
    return data


def _write_spec(tmp_path: Path, change: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "sfdc.yaml"
    path.write_text(yaml.safe_dump(merged(_spec_doc(), change or {}), sort_keys=False))
    return path


def test_the_command_writes_each_leads_account_and_method(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "matches.csv"
    spec = _write_spec(tmp_path)
    result = CliRunner().invoke(
        app, ["accounts", "match", str(folder), "--spec", str(spec), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("lead_id")
    expected = {
        "L1": ("A1", "domain"),
        "L2": ("A1", "domain"),
        "L3": ("A2", "company"),
        "L4": ("", "none"),
        "L5": ("", "none"),
        "L6": ("A4", "id"),
        "L7": ("A6", "company"),
        "L8": ("", "none"),  # its account column names an account the table lacks
        "L9": ("A7", "domain"),
    }
    assert {k: (r.account_id, r.method) for k, r in got.iterrows()} == expected
    counts = json.loads(result.stdout)["counts"]
    assert counts["id"] == 1 and counts["domain"] == 3 and counts["company"] == 2 and counts["none"] == 3
    assert counts["ambiguous"] == 1 and counts["unknown_account"] == 1 and counts["free_mail"] == 2


def test_a_spec_free_mail_domain_never_matches(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.parquet"
    spec = _write_spec(tmp_path, {"accounts": {"match": {"free_mail": ["Initech.de"]}}})
    result = CliRunner().invoke(
        app, ["accounts", "match", str(folder), "--spec", str(spec), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out).set_index("lead_id")
    assert got.loc["L9", "method"] == "none"


def test_validate_counts_the_matches_and_the_accounts_faults(folder: Path, tmp_path: Path) -> None:
    pd.concat([ACCOUNTS, ACCOUNTS.iloc[[1]]]).to_csv(folder / "Account.csv", index=False)
    pd.DataFrame({"AccountId": ["A1", "A404"], "CreatedDate": ["2025-02-01", "2025-02-03"]}).to_csv(
        folder / "Opportunity.csv", index=False
    )
    change = {
        "tables": {"opportunities": "Opportunity"},
        "label": {"column": "Id", "positive": ["L1"]},
        "accounts": {"label": {"opportunities": {"id": "AccountId", "time": "CreatedDate"}}},
    }
    spec = _write_spec(tmp_path, change)
    result = CliRunner().invoke(app, ["validate", str(folder), "--spec", str(spec), "--json"])
    report = json.loads(result.stdout)
    assert report["matching"]["duplicate_account_ids"] == 1
    assert report["matching"]["unknown_opportunities"] == 1
    checks = {p["check"]: p for p in report["problems"]}
    assert checks["duplicate_account_ids"]["level"] == "warning"
    assert checks["unknown_account"]["column"] == "AccountId"
    assert checks["ambiguous_match"]["count"] == 1
    # the company name shared by the duplicated account still matches it (one account, twice)
    text = CliRunner().invoke(app, ["validate", str(folder), "--spec", str(spec)]).output
    assert "accounts: leads matched by id 1, by domain 3, by company 2; unmatched 3 (1 ambiguous)" in text
    # every other command stops on duplicate ids, naming the key
    result = CliRunner().invoke(
        app, ["accounts", "match", str(folder), "--spec", str(spec), "--out", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2 and "spec key 'accounts.id'" in result.output
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"accounts": {"id": "AccountNumber"}}, "spec key 'accounts.id': column 'AccountNumber'"),
        ({"accounts": {"match": {"website": "Site"}}}, "spec key 'accounts.match.website': column 'Site'"),
        ({"accounts": {"match": {"email": "Mail"}}}, "spec key 'accounts.match.email': column 'Mail'"),
        ({"accounts": {"fit": ["Revenue"]}}, "spec key 'accounts.fit[0]': column 'Revenue'"),
        ({"accounts": {"roles": {"finance": {"Role": "*CFO*"}}}}, "spec key 'accounts.roles.finance'"),
        ({"tables": {"accounts": "Accounts"}}, "no 'Accounts' table"),
        ({"accounts": {"moments": {"every": "fortnight"}}}, "accounts.moments.every"),
        ({"accounts": {"moments": {"every": -3}}}, "accounts.moments.every"),
        (
            {"accounts": {"engagement": {"cfo_30d": {"contacts": "any", "role": "cfo"}}}},
            "engagement.cfo_30d.role: no role 'cfo'",
        ),
        ({"accounts": {"label": {"within_days": 30}}}, "give exactly one of 'opportunities'"),
        (
            {"accounts": {"label": {"opportunities": {"id": "AccountId", "time": "CreatedDate"}}}},
            "no 'Opportunity' table",
        ),
    ],
)
def test_a_wrong_accounts_key_is_one_line(
    folder: Path, tmp_path: Path, change: dict[str, Any], says: str
) -> None:
    change = {**change, "tables": {"opportunities": "Opportunity", **change.get("tables", {})}}
    spec = _write_spec(tmp_path, change)
    out = tmp_path / "m.csv"
    result = CliRunner().invoke(
        app, ["accounts", "match", str(folder), "--spec", str(spec), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1, result.output
    assert not out.exists()
